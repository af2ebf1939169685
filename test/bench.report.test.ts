import { describe, expect, test } from 'bun:test'
import { childEnv } from '../scripts/bench/children'
import type { ClusterFigure, LifecycleFigure, Results, ScalingFigure } from '../scripts/bench/context'
import { prepareRequest } from '../scripts/bench/http1-client'
import { parseOptions } from '../scripts/bench/options'
import { heapFlat } from '../scripts/bench/phases/backlog'
import { claimCounts } from '../scripts/bench/phases/lifecycle'
import {
  describeVariant,
  everyVariant,
  type LoopFigure,
  type LoopTrial,
  type LoopVariant,
  margins,
  plainVariant,
  searchVariants,
  strongest,
} from '../scripts/bench/reference-variants'
import { clusterLimit, heapSeries, looksPerTask, loopVariants, otherWork, performanceDoc, ratios, renderReport, targets } from '../scripts/bench/report'
import { benchHandlers, configurationMeasured, roleEnv } from '../scripts/bench/system'

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

/** Reference (a) at `loops`: the strongest of two trials, the plain loop and a smaller pool. */
const loopFigure = (loops: number, tasksPerSecond: number, cpuPerTaskUs: number): LoopFigure => {
  const winner: LoopVariant = { processes: 1, pool: loops / 2, redisConnections: 1 }
  const trials: LoopTrial[] = [
    { ...winner, tasksPerSecond, cpuPerTaskUs },
    { ...plainVariant(loops), tasksPerSecond: tasksPerSecond / 1.25, cpuPerTaskUs: cpuPerTaskUs * 1.2 },
  ]
  return strongest(loops, trials, 'every combination')
}

const run = (over: Partial<Results> = {}): Results => ({
  mode: 'full',
  startedAt: '2026-11-29T00:00:00Z',
  machine: { cores: 2, ulimitNofile: '20000', loadAverageStart: 0 },
  references: { loop: { '16': loopFigure(16, 500, 3000), '64': loopFigure(64, 1000, 2000) }, pgbenchInsertTps: 8000, pgbenchInsertClients: 64 },
  resources: { cpu: { 'lifecycle c64': { machine: 1.2 }, 'lifecycle c16': { machine: 0.7 } } },
  lifecycle: { closed: { '16': lifecycle(700, 4, 19), '64': lifecycle(1600, 30, 39) } },
  ...over,
})

const verdict = (r: Results, name: string) => targets(r, 10_000).find((t) => t.name.startsWith(name))

const http = (perSecond: number) => ({ count: 1000, p50: 5, p99: 20, max: 30, mean: 6, perSecond, requests: 1000, errors: 0 })

describe('bench report', () => {
  test('each closed loop is judged against reference (a) with as many loops, measured in the same run', () => {
    const rt = ratios(run())
    expect(rt['lifecycle_c16/loop']).toBe(1.4)
    expect(rt['lifecycle_c64/loop']).toBe(1.6)
    // 0.7 cores at 700 tasks/s is 1,000 us a task against the 16-loop reference's 3,000
    expect(rt['lifecycle_c16_cpu_per_task/loop']).toBe(0.33)
    // 1.2 cores at 1,600 tasks/s is 750 us a task against the 64-loop reference's 2,000
    expect(rt['lifecycle_c64_cpu_per_task/loop']).toBe(0.38)
    // No reference at 16 loops: that row has nothing to be judged against.
    const only64 = run({ references: { loop: { '64': loopFigure(64, 1000, 2000) } } })
    expect(ratios(only64)['lifecycle_c16/loop']).toBeNull()
    expect(verdict(only64, 'lifecycle c16 throughput')?.status).toBe('not measured')
  })

  test('a closed loop is judged against reference (a) run again beside it, when the run did; the CPU table shows that run', () => {
    // The machine slowed between the references phase and the lifecycle one: the run beside it found it so.
    const beside: LoopTrial = { processes: 1, pool: 8, redisConnections: 1, tasksPerSecond: 350, cpuPerTaskUs: 4000, cpuSplitUs: { loops: 1500 } }
    const r = run({ references: { ...run().references, loopBeside: { '16': beside } } })
    const rt = ratios(r)
    expect(rt['lifecycle_c16/loop']).toBe(2)
    expect(rt['lifecycle_c16_cpu_per_task/loop']).toBe(0.25)
    // Without a run beside it, c64 keeps the strongest found.
    expect(rt['lifecycle_c64/loop']).toBe(1.6)
    expect(verdict(r, 'lifecycle c16 throughput')).toMatchObject({ status: 'met', measured: '2.00x (700 vs 350 tasks/s)' })
    expect(verdict(r, 'lifecycle c16 machine CPU per task')).toMatchObject({ measured: '0.25x (1,000 vs 4,000 us)' })
    const text = renderReport(r, 10_000)
    expect(text).toMatch(/\(a\) again, beside lifecycle c16, tasks\/s +350 +4,000 us/)
    expect(text).toMatch(/\(a\) strongest loop x16, beside +4,000/)
    expect(text).toMatch(/\(a\) strongest loop x64 +.*2,000/)
  })

  test("the lone client's closed loop is judged against (a)'s single loop run beside it, which the references never searched", () => {
    const one: LoopTrial = { ...plainVariant(1), tasksPerSecond: 600, cpuPerTaskUs: 1200, cpuSplitUs: { loops: 500 } }
    const base = run()
    const r = run({
      references: { ...base.references, loopBeside: { '1': one } },
      resources: { cpu: { ...base.resources.cpu, 'lifecycle c1': { machine: 0.3, load: 0.02 } } },
      lifecycle: { closed: { '1': { ...lifecycle(200, 4.5, 9), stagesMs: { deliver_p50: 1.3, deliver_p99: 4.8 } }, ...base.lifecycle!.closed } },
    })
    const rt = ratios(r)
    expect(rt['lifecycle_c1/loop']).toBe(0.33)
    // 0.3 cores at 200 tasks/s is 1,500 us a task against the loop's 1,200
    expect(rt['lifecycle_c1_cpu_per_task/loop']).toBe(1.25)
    const text = renderReport(r, 10_000)
    expect(text).toMatch(/\(a\) at 1 loop, beside lifecycle c1, tasks\/s +600 +1,200 us +1 process x 1 loop, pg pool 1, 1 Redis connection, right before/)
    expect(text).toMatch(/closed c1 +200 +4\.50 ms +9\.00 ms .* 0\.33x .* 1\.30 ms \/ 4\.80 ms /)
    // (a)'s own processes are its client and worker in one: its load column.
    expect(text).toMatch(/lifecycle c1 +1,500 +100\n/)
    expect(text).toMatch(/\(a\) loop x1, beside +1,200 +500\n/)
    // It is the floor under the targets, not one of them.
    expect(targets(r, 10_000).some((t) => t.name.includes('c1 '))).toBe(false)
  })

  test('a lifecycle miss says what the same run shows behind it: the cores or round trips, where the time went, whose CPU', () => {
    const base = run()
    const slow: LifecycleFigure = {
      ...lifecycle(300, 8, 30),
      mean: 9,
      stagesMs: { answer_p50: 3, queue_p50: 2.5, run_p50: 1.5, deliver_p50: 2, answer_p99: 9, queue_p99: 8, run_p99: 5, deliver_p99: 7 },
    }
    const r = run({
      references: {
        ...base.references,
        loopBeside: { '16': { ...plainVariant(16), tasksPerSecond: 500, cpuPerTaskUs: 1500, cpuSplitUs: { loops: 600, postgres: 700, redis: 100 } } },
      },
      resources: { cpu: { ...base.resources.cpu, 'lifecycle c16': { machine: 1.2, api: 0.3, worker: 0.15, postgres: 0.6, redis: 0.03 } } },
      lifecycle: { closed: { '1': lifecycle(200, 3, 9), '16': slow, '64': base.lifecycle!.closed['64']! } },
    })
    const behind = (name: string) => verdict(r, name)?.behind
    // 1.2 of 2 cores: nothing saturated, so clients over mean latency is the throughput.
    expect(behind('lifecycle c16 throughput')).toBe(
      'none saturated (machine 1.20 of 2 cores): 16 clients / mean latency 9.00 ms = 300/s; one client: p50 3.00 ms',
    )
    expect(behind('lifecycle c16 machine CPU per task')).toBe(
      'api 1,000 + worker 500 + postgres 2,000 + redis 100 us; (a): its loops 600, postgres 700, redis 100 us',
    )
    expect(behind('lifecycle c16 latency')).toBe('p50 stages: answer 3.00 ms, queue 2.50 ms, run 1.50 ms, deliver 2.00 ms; one client: p50 3.00 ms')
    // A met target has nothing behind it.
    expect(verdict(r, 'lifecycle c64 throughput')).toMatchObject({ status: 'met' })
    expect(behind('lifecycle c64 throughput')).toBeUndefined()
    // A machine nearly all busy is named instead, with the side that used most of it.
    const busy = run({ ...r, resources: { cpu: { ...r.resources.cpu, 'lifecycle c16': { machine: 1.9, api: 0.5, worker: 0.3, postgres: 0.9 } } } })
    expect(verdict(busy, 'lifecycle c16 throughput')?.behind).toBe('2 cores, most to postgres 0.90: the CPU each task costs bounds it')
    expect(performanceDoc(r, 10_000)).toContain('- lifecycle c16 latency: p50 stages: answer 3.00 ms')
    expect(renderReport(r, 10_000)).toContain('\n  lifecycle c16 throughput: none saturated')
  })

  test("the wakes per task of each side, beside (a)'s, in a table and behind a CPU miss", () => {
    const base = run()
    const beside = { ...plainVariant(16), tasksPerSecond: 500, cpuPerTaskUs: 1500, wakesPerTask: { loops: 0.4, postgres: 9.5, redis: 1 } }
    const r = run({
      references: { ...base.references, loopBeside: { '16': beside } },
      resources: {
        cpu: { ...base.resources.cpu, 'lifecycle c16': { machine: 1.2, api: 0.3, worker: 0.15, postgres: 0.6, redis: 0.03 } },
        // Per second, over the 300 tasks/s of the run below.
        wakes: { 'lifecycle c16': { api: 150, worker: 90, load: 120, postgres: 300, redis: 60 } },
      },
      lifecycle: { closed: { '16': lifecycle(300, 8, 30), '64': base.lifecycle!.closed['64']! } },
    })
    expect(verdict(r, 'lifecycle c16 machine CPU per task')?.behind).toEndWith(
      "; wakes per task: api 0.5, worker 0.3, load 0.4, postgres 1, redis 0.2 vs (a)'s loops 0.4, postgres 9.5, redis 1",
    )
    const text = renderReport(r, 10_000)
    expect(text).toMatch(/\nlifecycle c16 +0\.50 +0\.30 +0\.40 +- +1\.00 +0\.20\n/)
    expect(text).toMatch(/\n\(a\) x16, beside +- +- +- +0\.40 +9\.50 +1\.00\n/)
    // With no wakes measured (older results), neither the table nor the behind part appears.
    expect(renderReport(run(), 10_000)).not.toContain('wakes per task')
  })

  test('a create, backlog or all-feed miss says where the cores went, beside its reference in the same run', () => {
    const base = run()
    const r = run({
      references: {
        ...base.references,
        loop: { ...base.references.loop, '64': { ...loopFigure(64, 1000, 2000), cpuSplitUs: { loops: 500, postgres: 900, redis: 60 } } },
        pgbenchInsertCpuUs: { load: 40, machine: 90 },
      },
      create: { '64': http(4000) },
      backlog: { ...backlog(1500, [14, 14, 14, 14]), cpuPerTaskUs: { worker: 120, postgres: 200, redis: 20, machine: 400 } },
      events: {
        '10020 all feed': { sockets: 10_020, shape: 'all feed', count: 100, p50: 120, p99: 220, max: 230, mean: 130 },
        '10020 bare Bun': { sockets: 10_020, shape: 'bare Bun', count: 100, p50: 100, p99: 180, max: 190, mean: 110 },
      },
      resources: {
        cpu: {
          ...base.resources.cpu,
          'create c64': { api: 0.96, postgres: 0.6, redis: 0.04, load: 0.2, machine: 1.9 },
          'backlog drain': { worker: 0.3, postgres: 0.5, redis: 0.03, machine: 0.9 },
          'events all feed': { api: 0.7, worker: 0.05, load: 1.1, machine: 1.95 },
          'events bare Bun': { api: 0.6, load: 1.2, machine: 1.9 },
        },
      },
    })
    const behind = (name: string) => verdict(r, name)?.behind
    expect(behind('create c64')).toBe(
      'api thread 0.96; 2 cores, most to api 0.96: per request api 240 + postgres 150 + redis 10 + load 50 us, machine 475 us; pgbench: machine 90 us per INSERT, 40 us of it its client',
    )
    expect(behind('backlog')).toBe(
      'none saturated: per task worker 120 + postgres 200 + redis 20 us, machine 400 us; (a) at 64 loops: its loops 500, postgres 900, redis 60 us, machine 2,000 us',
    )
    expect(behind('all-feed')).toBe(
      "the api busy 0.70 of a core vs (d)'s server 0.60, the socket load processes 1.10 vs 1.20, machine 1.95 vs 1.90 of 2 cores; p50 120.0 ms vs 100.0 ms",
    )
    // Without the CPU the run did not measure, a miss says nothing rather than something made up.
    expect(verdict(run({ create: { '64': http(4000) } }), 'create c64')).toMatchObject({ status: 'missed' })
    expect(verdict(run({ create: { '64': http(4000) } }), 'create c64')?.behind).toBeUndefined()
    const tables = renderReport(r, 10_000)
    expect(tables).toContain('create c64, per request')
    // Columns in the order the CPU splits first name them: machine, api, postgres, redis, load, worker.
    expect(tables).toMatch(/\(b\) pgbench INSERT c64 +90 +- +- +- +40 +-\n/)
    expect(tables).toMatch(/backlog drain +400 +- +200 +20 +- +120\n/)
  })

  test('throughput, CPU per task and latency are targets of their own, each printed as measured, goal and status', () => {
    expect(verdict(run(), 'lifecycle c64 throughput')).toEqual({
      name: 'lifecycle c64 throughput',
      target: '>= 1.3x (a) at 64 loops',
      status: 'met',
      measured: '1.60x (1,600 vs 1,000 tasks/s)',
    })
    expect(verdict(run(), 'lifecycle c16 machine CPU per task')).toMatchObject({ status: 'met', measured: '0.33x (1,000 vs 3,000 us)' })
    expect(verdict(run(), 'lifecycle c16 latency')).toMatchObject({ status: 'met', measured: 'p50 4.00 ms, p99 19.0 ms' })
    expect(verdict(run(), 'lifecycle c64 latency')).toMatchObject({ status: 'met', target: 'p99 <= 40 ms' })
    const slow = run({ lifecycle: { closed: { '16': lifecycle(650, 5.1, 19), '64': lifecycle(1200, 30, 41) } } })
    expect(verdict(slow, 'lifecycle c16 throughput')).toMatchObject({ status: 'met', measured: '1.30x (650 vs 500 tasks/s)' })
    expect(verdict(slow, 'lifecycle c64 throughput')).toMatchObject({ status: 'missed', measured: '1.20x (1,200 vs 1,000 tasks/s)' })
    expect(verdict(slow, 'lifecycle c16 latency')?.status).toBe('missed')
    expect(verdict(slow, 'lifecycle c64 latency')?.status).toBe('missed')
    // 2 cores at 700 tasks/s: 2,857 us a task, 0.95x the loop's
    const costly = run({ resources: { cpu: { 'lifecycle c16': { machine: 2 } } } })
    expect(verdict(costly, 'lifecycle c16 machine CPU per task')).toMatchObject({ status: 'missed', measured: '0.95x (2,857 vs 3,000 us)' })
  })

  test('what a run did not measure is said so, never judged', () => {
    for (const name of ['create c64', 'backlog', '2 workers', 'all-feed', 'API memory', 'nothing lost']) {
      expect(verdict(run(), name)).toMatchObject({ status: 'not measured', measured: '-' })
    }
  })

  test('create is judged at 64 clients against pgbench single INSERT at 64 clients, not at its best concurrency', () => {
    expect(verdict(run({ create: { '16': http(9000), '64': http(8800) } }), 'create c64')).toEqual({
      name: 'create c64',
      target: '>= 1.0x pgbench single INSERT (c64)',
      status: 'met',
      measured: '1.10x (8,800 vs 8,000/s)',
    })
    expect(verdict(run({ create: { '16': http(9000), '64': http(7000) } }), 'create c64')?.status).toBe('missed')
  })

  const backlog = (drainPerSecond: number, heap: [number, number, number, number]) => {
    const workerHeapAfterGc = [0.25, 0.5, 0.75, 1].map((drained, i) => ({ drained, mib: heap[i]! }))
    return {
      tasks: 100_000,
      enqueuePerSecond: 3000,
      drainPerSecond,
      drainWallSeconds: 40,
      workerRssStartMiB: 68,
      workerRssPeakMiB: 150,
      workerRssFirstHalfMiB: 140,
      workerRssSecondHalfMiB: 150,
      workerHeapAfterGc,
      flat: heapFlat(workerHeapAfterGc),
    }
  }

  test('the backlog needs twice the fastest reference (a) and a flat heap after collections', () => {
    expect(verdict(run({ backlog: backlog(2400, [14, 14.5, 14.8, 13]) }), 'backlog')).toMatchObject({
      status: 'met',
      target: ">= 2x (a)'s fastest, worker heap flat",
      measured: '2.40x (2,400 vs 1,000/s at 64 loops), heap after GC 14.0 / 14.5 / 14.8 / 13.0 MiB, flat',
    })
    expect(verdict(run({ backlog: backlog(1900, [14, 14, 14, 14]) }), 'backlog')?.status).toBe('missed')
    expect(verdict(run({ backlog: backlog(2400, [14, 15, 16, 16]) }), 'backlog')).toMatchObject({
      status: 'missed',
      measured: expect.stringContaining('grows'),
    })
    // A drain whose heap was never read is not judged on half of it.
    expect(verdict(run({ backlog: { ...backlog(2400, [14, 14, 14, 14]), workerHeapAfterGc: [], flat: null } }), 'backlog')?.status).toBe('not measured')
  })

  test('the heap is flat when it grows less than a tenth, or 1 MiB, from a quarter to three quarters of the drain', () => {
    const at = (early: number, late: number) => [
      { drained: 0.25, mib: early },
      { drained: 0.75, mib: late },
    ]
    expect(heapFlat(at(5, 5.9))).toBe(true)
    expect(heapFlat(at(5, 6.1))).toBe(false)
    expect(heapFlat(at(20, 22))).toBe(true)
    expect(heapFlat(at(20, 22.1))).toBe(false)
    expect(heapFlat([{ drained: 0.25, mib: 5 }])).toBeNull()
    expect(heapSeries([{ drained: 1, mib: 12 }, ...at(11, 11.5)])).toBe('11.0 / 11.5 / 12.0 MiB')
  })

  test('many sockets: the all-feed p99 within 1.1x of bare Bun publishing to as many, and memory per idle socket', () => {
    const at = (p99: number, shape: 'all feed' | 'bare Bun') => ({ sockets: 10_020, shape, count: 100, p50: p99 / 2, p99, max: p99, mean: p99 / 2 })
    const events = (feed: number, bare: number) => ({ '10020 all feed': at(feed, 'all feed'), '10020 bare Bun': at(bare, 'bare Bun') })
    expect(ratios(run({ events: events(90, 120) }))['events_all_feed_p99/bare_bun']).toBe(0.75)
    expect(verdict(run({ events: events(90, 85) }), 'all-feed')).toMatchObject({
      name: 'all-feed event latency at 10,000 sockets',
      status: 'met',
      measured: '1.06x (p99 90.0 ms vs 85.0 ms)',
    })
    expect(verdict(run({ events: events(100, 85) }), 'all-feed')?.status).toBe('missed')
    const fanout = (bytesPerSocket: number) => ({
      sockets: 10_000,
      offeredPerSecond: 1e6,
      deliveredPerSecond: 6e5,
      closedByServer: 0,
      apiRssBeforeMiB: 90,
      apiRssAfterMiB: 180,
      bytesPerSocket,
    })
    expect(verdict(run({ fanout: fanout(9 * 1024) }), 'API memory')).toMatchObject({ status: 'met', measured: '9.0 KiB' })
    expect(verdict(run({ fanout: fanout(11 * 1024) }), 'API memory')?.status).toBe('missed')
    // A quick run's smaller socket count is named in the target it is judged against.
    expect(targets(run({ fanout: fanout(9 * 1024) }), 1000).find((t) => t.name.startsWith('API memory'))?.name).toBe(
      'API memory per idle socket at 10,000 (measured at 1,000)',
    )
  })

  const scaling = (oneWorker: number, twoWorkers: number, machine: number) => {
    const row = (workers: number, perSecond: number, cpu: Record<string, number>): ScalingFigure => ({ ...lifecycle(perSecond, 20, 40), workers, cpu })
    return {
      concurrency: 64,
      oneWorker: row(1, oneWorker, { api: 0.5, worker: 0.4, postgres: 0.5, redis: 0.1, machine: 1.6 }),
      twoWorkers: row(2, twoWorkers, { api: 0.6, worker: 0.7, postgres: 0.5, redis: 0.1, machine }),
      ratio: Math.round((twoWorkers / oneWorker) * 100) / 100,
    }
  }

  test('two workers make 1.5x one, or the profile says what limits them', () => {
    expect(verdict(run({ scaling: scaling(1000, 1600, 1.9) }), '2 workers')?.status).toBe('met')
    // The cores were all busy with two: the profile is the answer where the cores do not allow more.
    const cores = verdict(run({ scaling: scaling(1000, 1100, 1.9) }), '2 workers')
    expect(cores?.status).toBe('met')
    expect(cores?.measured).toBe('1.10x; 1 worker: 2 cores, most to api 0.50; 2 workers: 2 cores, most to worker 0.70 (the cores do not allow it)')
    // Nothing saturated, and still no gain: missed, with what the run shows behind it.
    expect(verdict(run({ scaling: scaling(1000, 1100, 1.2) }), '2 workers')).toMatchObject({
      status: 'missed',
      measured: '1.10x; 1 worker: 2 cores, most to api 0.50; 2 workers: none saturated',
      behind: 'one worker process was busy 0.40 of a core; 64 clients / mean latency 20.0 ms = 1,000/s with one, 20.0 ms with two',
    })
  })

  test('nothing lost or duplicated covers the whole run and the cluster rows', () => {
    const check = (ok: boolean) => ({
      ok,
      posted: 750,
      rows: 750,
      byStatus: { COMPLETED: 750 },
      completedEventsNot1: 0,
      socketMissing: 0,
      socketDuplicates: 0,
      notes: ok ? [] : ['x'],
    })
    expect(verdict(run({ integrity: check(true) }), 'nothing lost')).toMatchObject({ status: 'met', measured: 'OK: 750 tasks' })
    const cluster = { concurrency: 64, masters: 3, rows: [], integrity: check(false) }
    expect(verdict(run({ integrity: check(true), cluster }), 'nothing lost')).toMatchObject({
      status: 'missed',
      measured: 'OK: 750 tasks; FAILED: 750 tasks (1 problems)',
    })
  })

  test('reference (a) tries its variants one setting at a time from the plain loop, and keeps the fastest', async () => {
    // A machine where half the pool is best, a second process costs, and four Redis connections help a little.
    const speed = (v: LoopVariant) => 1000 + (v.pool === 8 ? 300 : v.pool === 4 ? 100 : 0) - (v.processes === 2 ? 200 : 0) + (v.redisConnections === 4 ? 50 : 0)
    const tried: LoopVariant[] = []
    const trials = await searchVariants(
      16,
      async (v) => {
        tried.push(v)
        return { ...v, tasksPerSecond: speed(v) }
      },
      false,
    )
    expect(tried).toEqual([
      plainVariant(16),
      { processes: 1, pool: 8, redisConnections: 1 },
      { processes: 1, pool: 4, redisConnections: 1 },
      { processes: 2, pool: 8, redisConnections: 1 },
      { processes: 1, pool: 8, redisConnections: 4 },
    ])
    const f = strongest(16, trials, 'one setting at a time')
    expect(f.variant).toEqual({ processes: 1, pool: 8, redisConnections: 4 })
    expect(f.tasksPerSecond).toBe(1350)
    expect(describeVariant(f.variant, 16)).toBe('1 process x 16 loops, pg pool 8, 4 Redis connections')
    // Full mode tries every combination: 3 pool sizes x 1 or 2 processes x 1 or 4 Redis connections.
    expect(everyVariant(64)).toHaveLength(12)
    expect(everyVariant(64)[0]).toEqual(plainVariant(64))
    expect(await searchVariants(64, async (v) => ({ ...v, tasksPerSecond: speed(v) }), true)).toHaveLength(12)
  })

  test('the report says which variant of (a) won, by how much, and that it is the strongest found', () => {
    const f = loopFigure(64, 1000, 2000)
    expect(margins(f)).toEqual({ overNext: 0.25, overPlain: 0.25 })
    expect(describeVariant({ processes: 2, pool: 32, redisConnections: 4 }, 64)).toBe('2 processes x 32 loops, pg pools 32 (16 each), 4 Redis connections each')
    const text = loopVariants([f])
    expect(text).toMatch(/64\s+1 process x 64 loops, pg pool 32, 1 Redis connection\s+1,000\s+2,000 us\s+strongest found/)
    expect(text).toMatch(/1 process x 64 loops, pg pool 64, 1 Redis connection \(plain\)\s+800\s+2,400 us\s+0\.80x/)
    expect(text).toContain(
      '(a) is the strongest loop found: 64 loops: 1 process x 64 loops, pg pool 32, 1 Redis connection, the strongest of 2 tried (+25% over the next, +25% over the plain loop)',
    )
    // The plain loop winning says so rather than a margin over itself.
    const plainWins = strongest(16, [{ ...plainVariant(16), tasksPerSecond: 900 }], 'one setting at a time')
    expect(margins(plainWins)).toEqual({ overNext: null, overPlain: null })
    expect(loopVariants([plainWins])).toContain('the strongest of 1 tried (the plain loop itself)')
    expect(renderReport(run(), 10_000)).toContain('(a) strongest bare loop, 64 loops, tasks/s       1,000          2,000 us  1 process x 64 loops, pg pool 32')
  })

  test('the roles run as shipped, and the report says so in its header', () => {
    const env = { databaseUrl: 'postgres://x/db', redisUrl: 'redis://x', jobShards: 1, keyPrefix: 'p:' } as Parameters<typeof roleEnv>[0]
    const set = roleEnv(env, 1234)
    // Left at their defaults, even when the shell running the bench sets them.
    for (const k of ['AUTH', 'LOG_LEVEL', 'RATE_LIMIT_PER_SEC']) expect(set[k]).toBeNull()
    const before = process.env.LOG_LEVEL
    process.env.LOG_LEVEL = 'warn'
    try {
      expect(childEnv(set).LOG_LEVEL).toBeUndefined()
      expect(childEnv(set).PORT).toBe('1234')
    } finally {
      if (before === undefined) delete process.env.LOG_LEVEL
      else process.env.LOG_LEVEL = before
    }
    expect(set.WS_MAX_CONNECTIONS_PER_TOKEN).toBe(20_000)
    expect(configurationMeasured).toStartWith('the shipped configuration: AUTH, LOG_LEVEL, LOG_FORMAT, RATE_LIMIT_PER_SEC at their defaults')
    expect(configurationMeasured).toContain(benchHandlers)
    const r = run({ configuration: configurationMeasured })
    expect(renderReport(r, 10_000).split('\n').slice(0, 3).join('\n')).toContain('measured in the shipped configuration')
    expect(performanceDoc(r, 10_000)).toContain('Measured in the shipped configuration')
  })

  test('the token goes on every request the load processes send', () => {
    const head = prepareRequest(new URL('http://127.0.0.1:1/api/tasks/'), 'POST', { a: 1 }, { Authorization: 'Bearer tl_1_x' }).toString()
    expect(head).toStartWith('POST /api/tasks/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\nAuthorization: Bearer tl_1_x\r\nContent-Type: application/json\r\n')
  })

  test('docs/performance.md is the run itself: machine, targets met of judged, and the printed tables', () => {
    const r = run({ machine: { cores: 2, cpuModel: 'Test CPU 9000', memoryGiB: 24, ulimitNofile: '20000', loadAverageStart: 0.1, loadAverageEnd: 1.5 } })
    const doc = performanceDoc(r, 10_000)
    expect(doc).toStartWith('# Performance\n')
    expect(doc).toContain('Machine: 2 cores, Test CPU 9000, 24 GiB memory')
    // lifecycle throughput, CPU per task and latency at c16 and c64 met; nothing else measured
    expect(doc).toContain('## Targets: 6 of 6 met')
    expect(doc).toContain('| lifecycle c64 throughput | 1.60x (1,600 vs 1,000 tasks/s) | >= 1.3x (a) at 64 loops | met |')
    expect(doc).toContain('closed c64')
    const missed = performanceDoc(run({ lifecycle: { closed: { '64': lifecycle(1200, 30, 45) } } }), 10_000)
    expect(missed).toContain('## Targets: 1 of 3 met')
    expect(missed).toContain('| **missed** |')
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

  test("the CPU per task table splits reference (a)'s like ours, and the lifecycle table says how long the POST took", () => {
    const loop = { ...loopFigure(16, 500, 3000), cpuSplitUs: { loops: 1200, postgres: 1500, redis: 250 } }
    const withAnswer = { ...lifecycle(700, 4, 19), stagesMs: { answer_p50: 1.5, answer_p99: 6, queue_p50: 1, queue_p99: 3, run_p50: 0.5, run_p99: 2 } }
    const r = run({
      references: { loop: { '16': loop } },
      resources: { cpu: { 'lifecycle c16': { api: 0.2, worker: 0.2, postgres: 0.25, redis: 0.05, machine: 0.7, load: 0.05 } } },
      lifecycle: { closed: { '16': withAnswer } },
    })
    const text = renderReport(r, 10_000)
    // phase, api, worker, postgres, redis, machine, load: the loop's own processes in the load column.
    expect(text).toMatch(/\(a\) strongest loop x16 +- +- +1,500 +250 +3,000 +1,200\n/)
    expect(text).toMatch(/closed c16 .* 1\.50 ms \/ 6\.00 ms +1\.00 ms \/ 3\.00 ms +0\.50 ms \/ 2\.00 ms/)
  })
})

test("looks per task: the worker's looks in Postgres per task POSTed, with the share that claimed nothing", () => {
  expect(looksPerTask({ claimed: 30, empty: 10, tasks: 400 })).toBe('0.10 (25% empty)')
  expect(looksPerTask({ claimed: 0, empty: 0, tasks: 10 })).toBe('0.00 (0% empty)')
  expect(looksPerTask({ claimed: 1, empty: 0, tasks: 0 })).toBe('-')
  expect(looksPerTask(undefined)).toBe('-')
})

test("looks are read from the worker's /metrics page by result; a page without the series gives none, not zeros", () => {
  const page = [
    '# HELP taskline_claims_total Looks in Postgres',
    '# TYPE taskline_claims_total counter',
    'taskline_claims_total{result="empty",role="worker"} 7',
    'taskline_claims_total{result="claimed",role="worker"} 42',
    'taskline_tasks_total{event="completed",type="demo",role="worker"} 99',
  ].join('\n')
  expect(claimCounts(page)).toEqual({ claimed: 42, empty: 7 })
  expect(claimCounts('taskline_tasks_total{event="completed"} 3\n')).toBeNull()
})
