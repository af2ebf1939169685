import { expect, test } from 'bun:test'

// Bun strips types without checking them; this keeps `bun test` honest about them.
// The dashboard is its own program (DOM types), checked separately.
test.each(['.', 'src/dashboard'])(
  'tsc --noEmit -p %s finds no type error',
  (project) => {
    const tsc = Bun.spawnSync(['bunx', 'tsc', '--noEmit', '-p', project], { cwd: `${import.meta.dir}/..` })
    const output = tsc.stdout.toString() + tsc.stderr.toString()
    expect(output).toBe('')
    expect(tsc.exitCode).toBe(0)
  },
  120_000,
)
