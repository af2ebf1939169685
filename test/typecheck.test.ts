import { expect, test } from 'bun:test'

// Bun strips types without checking them; this keeps `bun test` honest about them.
test('the whole project type-checks (tsc --noEmit)', () => {
  const tsc = Bun.spawnSync(['bunx', 'tsc', '--noEmit', '-p', '.'], { cwd: `${import.meta.dir}/..` })
  const output = tsc.stdout.toString() + tsc.stderr.toString()
  expect(output).toBe('')
  expect(tsc.exitCode).toBe(0)
}, 120_000)
