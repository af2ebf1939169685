import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'

const root = join(import.meta.dir, '..')

/** Runs a script that logs through createLogger in a child process; its stderr, read as it comes. */
function child(script: string) {
  const proc = Bun.spawn(['bun', '-e', `import { createLogger } from './src/infra/logger'\n${script}`], { cwd: root, stdout: 'ignore', stderr: 'pipe' })
  let text = ''
  const reading = (async () => {
    const decoder = new TextDecoder()
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) text += decoder.decode(chunk, { stream: true })
  })()
  return {
    proc,
    reading,
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { msg: string; n?: number }),
  }
}

describe('JSON log lines on stderr', () => {
  test("a line logged in a process that then idles is written within that turn's end, not held", async () => {
    const c = child(`createLogger('info', {}, 'json').info('alone', { n: 1 }); setInterval(() => {}, 1000)`)
    try {
      const deadline = Date.now() + 10_000
      while (!c.lines().some((l) => l.msg === 'alone') && Date.now() < deadline) await Bun.sleep(20)
      expect(c.lines().map((l) => l.msg)).toEqual(['alone'])
    } finally {
      c.proc.kill()
    }
  })

  test('every line logged in the turn a process exits in is written, in order', async () => {
    const c = child(`const log = createLogger('info', {}, 'json'); for (let n = 0; n < 500; n++) log.info('line', { n }); process.exit(0)`)
    await c.proc.exited
    await c.reading
    expect(c.lines().map((l) => l.n)).toEqual(Array.from({ length: 500 }, (_, n) => n))
  })
})
