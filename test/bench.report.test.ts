import { describe, expect, test } from 'bun:test'
import type { ClusterFigure, LifecycleFigure, Results } from '../scripts/bench/context'
import { parseOptions } from '../scripts/bench/options'
import { clusterLimit, otherWork, performanceDoc, ratios, renderReport, targets } from '../scripts/bench/report'

// The bench's verdicts are pure arithmetic on what a run measured; this pins them without running it.
const lifecycle = (perSecond: number, p50: number, p99: number): LifecycleFigure => ({
  count: 1000,
  p50,
  p99,
  max: p99,
  mean: p50,
  perSecond,
  stagesMs: {},
  missing: 0,
  duplicates: 0,
  postErrors: 0,
  warmupMs: 1000,
})

const run = (over: Partial<Results> = {}): Results => ({
  mode: 'full',
  startedAt: '2026-11-29T00:00:00Z',
  machine: { cores: 2, ulimitNofile: '20000', loadAverageStart: 0 },
  references: { loopTasksPerSecond: 1000, loopCpuPerTaskUs: 2000, pgbenchInsertTps: 8000 },
  resources: { cpu: { 'lifecycle c64': { machine: 1.6 }, 'lifecycle c16': { machine: 1.5 } } },
  lifecycle: { closed: { '16': lifecycle(700, 4, 19), '64': lifecycle(1600, 30, 45) } },
  ...over,
})

const verdict = (r: Results, name: string) => targets(r, 10_000).find((t) => t.name.startsWith(name))

describe('bench report', () => {
  test('throughput and CPU per task are judged against the bare loop measured in the same run', () => {
    const rt = ratios(run())
    expect(rt['lifecycle_c64/loop']).toBe(1.6)
    // 1.6 cores at 1,600 tasks/s is 1,000 us a task, half the loop's 2,000
    expect(rt['lifecycle_c64_cpu_per_task/loop']).toBe(0.5)
  })

  test('a lifecycle target is met only when both its throughput and its latency are', () => {
    expect(verdict(run(), 'lifecycle c64')).toMatchObject({ status: 'met', measured: '1.60x, p99 45.0 ms' })
    expect(verdict(run(), 'lifecycle c16')).toMatchObject({ status: 'met' })
    const slowTail = run({ lifecycle: { closed: { '64': lifecycle(1600, 30, 51) } } })
    expect(verdict(slowTail, 'lifecycle c64')?.status).toBe('not met')
    const slow = run({ lifecycle: { closed: { '64': lifecycle(1200, 30, 45) } } })
    expect(verdict(slow, 'lifecycle c64')?.status).toBe('not met')
  })

  test('what a run did not measure is said so, never judged', () => {
    expect(verdict(run(), 'create')).toMatchObject({ status: 'not measured', measured: '-' })
    expect(verdict(run(), 'backlog')).toMatchObject({ status: 'not measured' })
  })

  test('the backlog needs both the drain rate and flat memory', () => {
    const backlog = {
      tasks: 100_000,
      enqueuePerSecond: 3000,
      drainPerSecond: 2400,
      drainWallSeconds: 40,
      workerRssStartMiB: 68,
      workerRssPeakMiB: 150,
      workerRssFirstHalfMiB: 140,
      workerRssSecondHalfMiB: 150,
    }
    expect(verdict(run({ backlog: { ...backlog, flat: true } }), 'backlog')).toMatchObject({ status: 'met', measured: '2.40x, flat' })
    expect(verdict(run({ backlog: { ...backlog, flat: false } }), 'backlog')).toMatchObject({ status: 'not met', measured: '2.40x, grows' })
  })

  test('many sockets are judged in each shape on its own: watching their own tasks, and all on the feed', () => {
    const at = (p99: number, shape?: 'own task' | 'all feed') => ({ sockets: 10_020, shape, count: 100, p50: p99 / 2, p99, max: p99, mean: p99 / 2 })
    const r = run({ events: { '100': at(4.9), '10020 own task': at(12, 'own task'), '10020 all feed': at(300, 'all feed') } })
    expect(verdict(r, 'event latency p99 <= 5 ms at 100')).toMatchObject({ status: 'met' })
    expect(verdict(r, 'event latency p99 <= 25 ms at 10,000 sockets, each watching')).toMatchObject({ status: 'met', measured: 'p99 12.0 ms' })
    expect(verdict(r, 'event latency p99 <= 25 ms at 10,000 sockets, all on')).toMatchObject({ status: 'not met', measured: 'p99 300.0 ms' })
    expect(verdict(run({ events: { '100': at(5.1) } }), 'event latency p99 <= 5 ms at 100')?.status).toBe('not met')
  })

  test('the all-feed figure is printed beside reference (d), bare Bun publishing to as many sockets, and judged on its own', () => {
    const at = (p99: number, shape: 'all feed' | 'bare Bun') => ({ sockets: 10_020, shape, count: 100, p50: p99 / 2, p99, max: p99, mean: p99 / 2 })
    const r = run({ events: { '10020 all feed': at(90, 'all feed'), '10020 bare Bun': at(120, 'bare Bun') } })
    expect(ratios(r)['events_all_feed_p99/bare_bun']).toBe(0.75)
    expect(verdict(r, 'event latency p99 <= 25 ms at 10,000 sockets, all on')).toMatchObject({
      status: 'not met',
      measured: 'p99 90.0 ms; bare Bun (d) p99 120.0 ms, 0.75x',
    })
  })

  test('docs/performance.md is the run itself: machine, targets met of judged, and the printed tables', () => {
    const r = run({ machine: { cores: 2, cpuModel: 'Test CPU 9000', memoryGiB: 24, ulimitNofile: '20000', loadAverageStart: 0.1, loadAverageEnd: 1.5 } })
    const doc = performanceDoc(r, 10_000)
    expect(doc).toStartWith('# Performance\n')
    expect(doc).toContain('Machine: 2 cores, Test CPU 9000, 24 GiB memory')
    // lifecycle c64 and c16 met; nothing else measured
    expect(doc).toContain('## Targets: 2 of 2 met')
    expect(doc).toContain('| lifecycle c64 >= 1.3x (a), p99 <= 50 ms | 1.60x, p99 45.0 ms | met |')
    expect(doc).toContain('closed c64')
    const missed = performanceDoc(run({ lifecycle: { closed: { '64': lifecycle(1200, 30, 45) } } }), 10_000)
    expect(missed).toContain('## Targets: 0 of 1 met')
    expect(missed).toContain('| **not met** |')
  })

  const clusterRow = (
    redis: 'single' | 'cluster',
    shards: number,
    workers: number,
    perSecond: number,
    cpu: Record<string, number>,
    redisNodeMax = cpu.redis!,
  ) => ({ ...lifecycle(perSecond, 40, 90), redis, shards, workers, cpu, redisNodeMax }) satisfies ClusterFigure

  test('what limits a cluster row is read from its CPU split: a one-thread process near a core, or the machine', () => {
    const cpu = { api: 0.5, worker: 0.4, redis: 0.1, postgres: 0.5, load: 0.1 }
    // 1.6 of 2 cores busy: the cores, and the api used most of them
    expect(clusterLimit(clusterRow('single', 1, 1, 1000, { ...cpu, machine: 1.6 }), 2)).toBe('2 cores, most to api 0.50')
    // the same split, but other users of the machine took more than any side of ours
    const crowded = clusterRow('cluster', 3, 1, 500, { ...cpu, machine: 1.9 })
    expect(otherWork(crowded)).toBe(0.3)
    expect(clusterLimit({ ...crowded, cpu: { ...cpu, api: 0.2, machine: 1.9 } }, 2)).toBe('2 cores, most to other work 0.60')
    // the cluster's nodes sum to 1.2 cores, but the busiest one alone is the limit
    const hotNode = clusterRow('cluster', 1, 2, 9000, { api: 0.95, worker: 2, redis: 1.2, postgres: 2, load: 0.5, machine: 7 }, 0.98)
    expect(clusterLimit(hotNode, 16)).toBe('api thread 0.95, redis-server thread 0.98')
    expect(clusterLimit(clusterRow('single', 1, 1, 300, { ...cpu, machine: 1.2 }), 2)).toBe('none saturated')
  })

  test('the cluster table compares every row with the single-Redis one-worker row and checks its own tasks', () => {
    const rows = [
      clusterRow('single', 1, 1, 1000, { api: 0.6, worker: 0.4, redis: 0.1, postgres: 0.4, load: 0.1, machine: 1.7 }),
      clusterRow('cluster', 3, 2, 750, { api: 0.4, worker: 0.5, redis: 0.15, postgres: 0.6, load: 0.1, machine: 1.9 }, 0.06),
    ]
    const check = { ok: true, posted: 750, rows: 750, byStatus: { COMPLETED: 750 }, completedEventsNot1: 0, socketMissing: 0, socketDuplicates: 0, notes: [] }
    const r = run({ cluster: { concurrency: 64, masters: 3, rows, integrity: check } })
    expect(ratios(r)['cluster_cluster_3shards_2workers/single_1worker']).toBe(0.75)
    const text = renderReport(r, 10_000)
    expect(text).toContain('cluster: lifecycle closed loop c64')
    // 1.75 cores of ours at 750 tasks/s: 2,333 us a task; the machine's other 0.15 is other work
    expect(text).toMatch(/cluster \(3 masters\)\s+3\s+2\s+750\s+0\.75x.*\s0\.15\s+1\.90\s+2,333\s+2 cores, most to postgres 0\.60/)
    expect(text).toContain("cluster integrity (the cluster rows' tasks, checked before it was torn down): OK: 750 tasks POSTed")
    expect(performanceDoc(r, 10_000)).toContain('`bun run bench --full --cluster --write docs/performance.md`')
  })

  test('the cluster phase runs only when asked for: it starts a Redis Cluster of its own', () => {
    expect(parseOptions([]).phases.has('cluster')).toBe(false)
    expect(parseOptions(['--full']).phases.has('cluster')).toBe(false)
    expect(parseOptions(['--cluster']).phases.has('lifecycle')).toBe(true)
    expect([...parseOptions(['--cluster', '--only', 'cluster']).phases]).toEqual(['cluster'])
    expect([...parseOptions(['--only=scaling', '--cluster']).phases]).toEqual(['scaling', 'cluster'])
  })

  test('--write takes a markdown file; anything else is refused before a run starts', () => {
    expect(parseOptions(['--write', 'docs/performance.md']).write).toBe('docs/performance.md')
    expect(parseOptions(['--full', '--write=out.md']).write).toBe('out.md')
    expect(parseOptions([]).write).toBeNull()
    expect(() => parseOptions(['--write'])).toThrow(/markdown file/)
    expect(() => parseOptions(['--write', 'perf.txt'])).toThrow(/markdown file/)
  })
})
