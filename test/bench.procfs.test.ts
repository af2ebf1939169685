import { expect, test } from 'bun:test'
import { measureCpu } from '../scripts/bench/procfs'

/** Runs code in a child that prints "start" and "done" around the part measured; resolves with what measureCpu saw in between. */
async function measured(code: string) {
  const child = Bun.spawn(['bun', '-e', `console.log('start'); ${code}; console.log('done'); await Bun.sleep(100_000)`], { stdout: 'pipe' })
  const reader = child.stdout.getReader()
  let seen = ''
  const until = async (line: string) => {
    while (!seen.includes(line)) {
      const { value, done } = await reader.read()
      if (done) throw new Error(`child exited before "${line}"`)
      seen += new TextDecoder().decode(value)
    }
  }
  try {
    await until('start')
    const started = performance.now()
    const m = measureCpu({ child: () => [child.pid] })
    await until('done')
    const cores = m.stop()
    const seconds = (performance.now() - started) / 1000
    return { wakes: m.wakes.child! * seconds, cores: cores.child! }
  } finally {
    child.kill()
  }
}

test('wakes: a process that sleeps and wakes forty times counts about forty; one spinning as long counts a few at most', async () => {
  const sleeper = await measured('for (let i = 0; i < 40; i++) await Bun.sleep(20)')
  expect(sleeper.wakes).toBeGreaterThanOrEqual(35)
  const spinner = await measured('const end = Date.now() + 800; while (Date.now() < end) {}')
  expect(spinner.wakes).toBeLessThan(15)
  expect(spinner.cores).toBeGreaterThan(sleeper.cores)
})
