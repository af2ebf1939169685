import { describe, expect, test } from 'bun:test'
import { type CpuProfile, packageOf, parseCpuProfile, summarise } from '../scripts/bench/cpu-profile'

/** A profile as Bun 1.4's --cpu-prof writes it (the parts read): call frames, which frame each sample was in, microseconds before each. */
function profile(frames: [string, string, number][], samples: [number, number][]): CpuProfile {
  return {
    nodes: [
      { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 } },
      ...frames.map(([functionName, url, lineNumber], i) => ({ id: i + 2, callFrame: { functionName, url, lineNumber } })),
    ],
    samples: samples.map(([frame]) => frame + 2),
    timeDeltas: samples.map(([, us]) => us),
  }
}
const match = ['match', 'file:///r/node_modules/hono/dist/router/smart-router/router.js', 27] as [string, string, number]
const write = ['writeBuffered', '', -1] as [string, string, number]
const claim = ['claim', 'file:///r/src/worker/intake.ts', 39] as [string, string, number]

describe('bench CPU profiles', () => {
  test('self time is counted in samples, each worth the median interval: a long idle gap before a sample adds nothing', () => {
    // A millisecond apart, except the second match sample, which came after the process sat idle for two seconds.
    const hot = parseCpuProfile(
      profile(
        [match, write, claim],
        [
          [0, 5],
          [0, 2_000_000],
          [1, 1000],
          [1, 1000],
          [1, 1000],
          [2, 1000],
          [0, 1000],
        ],
      ),
    )
    expect(hot).toEqual([
      { fn: 'match', location: '/r/node_modules/hono/dist/router/smart-router/router.js:28', selfMs: 3 },
      { fn: 'writeBuffered', location: '[native code]', selfMs: 3 },
      { fn: 'claim', location: '/r/src/worker/intake.ts:40', selfMs: 1 },
    ])
  })

  test("a load's profile less the start-up's: what the load cost, by function and by package", () => {
    const ms = (n: number, frame: number) => Array.from({ length: n }, () => [frame, 1000] as [number, number])
    const loaded = parseCpuProfile(profile([match, ['writeBuffered', 'internal:net', 9], claim], [...ms(1500, 0), ...ms(900, 1), ...ms(600, 2)]))
    const startup = parseCpuProfile(profile([match], ms(1300, 0)))
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
