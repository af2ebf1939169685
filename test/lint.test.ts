import { expect, test } from 'bun:test'

// The formatter and the linter are part of the suite, so CI refuses code neither has seen.
// `bun run format` fixes formatting; `bun run lint` shows what is left.
test('biome check (format and lint) finds nothing', () => {
  const biome = Bun.spawnSync(['bunx', 'biome', 'check', '--max-diagnostics=20', '.'], { cwd: `${import.meta.dir}/..` })
  const output = biome.stdout.toString() + biome.stderr.toString()
  expect({ exitCode: biome.exitCode, output: biome.exitCode === 0 ? '' : output }).toEqual({ exitCode: 0, output: '' })
}, 60_000)
