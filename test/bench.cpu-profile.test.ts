import { describe, expect, test } from 'bun:test'
import { packageOf, parseHotFunctions, summarise } from '../scripts/bench/cpu-profile'

// The shape Bun 1.4's --cpu-prof-md writes (trimmed): a summary, the self-time table, then other tables.
const profile = (rows: string[]) => `# CPU Profile

| Duration | Samples | Interval | Functions |
|----------|---------|----------|----------|
| 2.06s | 264 | 1.0ms | 634 |

## Hot Functions (Self Time)

| Self% | Self | Total% | Total | Function | Location |
|------:|-----:|-------:|------:|----------|----------|
${rows.join('\n')}

## Call Tree (Total Time)

| Total% | Total | Self% | Self | Function | Location |
|-------:|------:|------:|-----:|----------|----------|
| 100.0% | 2.06s | 0.0% | 0us | \`(module)\` | \`/r/src/bin/api.ts:1\` |
`

describe('bench CPU profiles', () => {
  test('the self-time table is read in ms, whatever unit Bun printed', () => {
    const hot = parseHotFunctions(
      profile([
        '| 63.0% | 1.30s | 63.2% | 1.30s | `match` | `/r/node_modules/hono/dist/router/smart-router/router.js:28` |',
        '| 17.3% | 359.4ms | 45.2% | 936.2ms | `anonymous` | `[native code]` |',
        '| 0.1% | 900us | 0.1% | 900us | `claim` | `/r/src/worker/intake.ts:40` |',
      ]),
    )
    expect(hot).toEqual([
      { fn: 'match', location: '/r/node_modules/hono/dist/router/smart-router/router.js:28', selfMs: 1300 },
      { fn: 'anonymous', location: '[native code]', selfMs: 359.4 },
      { fn: 'claim', location: '/r/src/worker/intake.ts:40', selfMs: 0.9 },
    ])
  })

  test("a load's profile less the start-up's: what the load cost, by function and by package", () => {
    const loaded = parseHotFunctions(
      profile([
        '| 50.0% | 1.50s | 50.0% | 1.50s | `match` | `/r/node_modules/hono/dist/router/smart-router/router.js:28` |',
        '| 30.0% | 900ms | 30.0% | 900ms | `writeBuffered` | `internal:net:10` |',
        '| 20.0% | 600ms | 20.0% | 600ms | `claim` | `/r/src/worker/intake.ts:40` |',
      ]),
    )
    const startup = parseHotFunctions(profile(['| 63.0% | 1.30s | 63.2% | 1.30s | `match` | `/r/node_modules/hono/dist/router/smart-router/router.js:28` |']))
    const s = summarise(loaded, startup, '/r')
    expect(s.totalMs).toBe(1700)
    expect(s.top.map((h) => [h.fn, h.selfMs])).toEqual([
      ['writeBuffered', 900],
      ['claim', 600],
      ['match', 200],
    ])
    expect(s.packages.map((p) => p.name)).toEqual(['Bun runtime (internal:, node:)', 'src/worker', 'hono'])
    expect(s.packages[0]!.share).toBeCloseTo(900 / 1700)
  })

  test('locations name their package: ours by src folder, node_modules by package (scoped too), Bun by kind', () => {
    expect(packageOf('/r/src/api/app.ts:12', '/r')).toBe('src/api')
    expect(packageOf('/r/node_modules/@hono/zod-validator/dist/index.js', '/r')).toBe('@hono/zod-validator')
    expect(packageOf('/r/node_modules/pg/lib/client.js:100', '/r')).toBe('pg')
    expect(packageOf('[native code]', '/r')).toBe('native code (Bun, JSC)')
    expect(packageOf('node:events', '/r')).toBe('Bun runtime (internal:, node:)')
  })
})
