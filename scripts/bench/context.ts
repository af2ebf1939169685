import type { LatencySummary } from './histogram'
import type { LoopFigure, LoopTrial } from './reference-variants'
import type { Options } from './options'
import type { ProfileSummary } from './cpu-profile'
import type { BenchEnv, Role } from './system'
import { expectReply, spawnChild } from './children'

/**
 * Many sockets, timed two ways: each watching a task of its own, or all on the
 * all-tasks feed; and reference (d), a bare Bun server publishing to as many.
 */
export type ManySocketsShape = 'own task' | 'all feed' | 'bare Bun'

export type LatencyPoints = Pick<LatencySummary, 'p50' | 'p99' | 'max'>

export interface HttpFigure extends LatencySummary {
  perSecond: number
  requests: number
  errors: number
}

export interface LifecycleFigure extends LatencySummary {
  perSecond: number
  /** p50/p99 of POST-to-claim (queue) and claim-to-finish (run), from the rows' timestamps. */
  stagesMs: Record<string, number | null>
  missing: number
  duplicates: number
  postErrors: number
  /** Time until the window opened: the set warm-up, longer if no task had completed by then. */
  warmupMs: number
  /** The worker's looks in Postgres during the run (taskline_claims_total), by result, beside the tasks POSTed. */
  looks?: { claimed: number; empty: number; tasks: number }
}

/** One closed-loop lifecycle run of the scaling phase, with the cores each side used during it. */
export interface ScalingFigure extends LifecycleFigure {
  workers: number
  /** Cores busy, as in resources.cpu: api, worker (every worker process together), postgres, redis, machine, load. */
  cpu: Record<string, number>
}

/**
 * One closed-loop run of the cluster phase: on the bench's own Redis ('single')
 * or on the local Redis Cluster, with JOB_SHARDS and the worker processes given.
 * cpu.redis is the bench Redis's process for 'single' (other users of that
 * shared server included), every cluster node summed for 'cluster'.
 */
export interface ClusterFigure extends ScalingFigure {
  redis: 'single' | 'cluster'
  shards: number
  /** The busiest redis-server process's cores: one thread serves each, so near 1.0 it is the limit. */
  redisNodeMax: number | null
}

/** Tasks of one phase (an id range of the rows) checked as verify() checks the whole run. */
export interface TaskCheck {
  ok: boolean
  posted: number
  rows: number
  byStatus: Record<string, number>
  completedEventsNot1: number
  socketMissing: number
  socketDuplicates: number
  notes: string[]
}

/** Everything a run measured; printed as the table and, whole, as the JSON line. */
export interface Results {
  mode: Options['mode']
  startedAt: string
  machine: { cores: number; cpuModel?: string; memoryGiB?: number; ulimitNofile: string; loadAverageStart: number; loadAverageEnd?: number }
  /** What the roles ran with (system.ts configurationMeasured), for the report's header. */
  configuration?: string
  references: {
    /**
     * Reference (a), the strongest bare loop found, keyed by its number of
     * loops (each lifecycle concurrency): tasks/s, the whole machine's CPU
     * per task, the variant that won and every trial behind the choice.
     */
    loop?: Record<string, LoopFigure>
    /**
     * That strongest variant (for one loop, the only one) run again right
     * before the lifecycle closed loop with as many clients, with its warm-up
     * and window: what the lifecycle ratios use, the machine being as that run
     * found it.
     */
    loopBeside?: Record<string, LoopTrial>
    pgbenchLifecycleTps?: number
    pgbenchLifecycleClients?: number
    pgbenchInsertTps?: number
    pgbenchInsertClients?: number
    /** CPU per INSERT of pgbench's client and of the whole machine, over its run (pgbench.ts). */
    pgbenchInsertCpuUs?: { load: number; machine: number }
    hello?: Record<string, HttpFigure>
  }
  create?: Record<string, HttpFigure>
  backlog?: {
    tasks: number
    enqueuePerSecond: number
    drainPerSecond: number
    drainWallSeconds: number
    workerRssStartMiB: number
    workerRssPeakMiB: number
    workerRssFirstHalfMiB: number
    workerRssSecondHalfMiB: number
    /**
     * The worker's JS heap right after a full collection (Bun.gc(true) in a
     * bench-gc task, phases/backlog.ts), at drained fractions of the backlog
     * (1 = after the drain); flat when it does not grow from a quarter to
     * three quarters. null when the heap could not be read.
     */
    workerHeapAfterGc: { drained: number; mib: number }[]
    flat: boolean | null
    /** Microseconds of CPU per drained task, by side (worker, postgres, redis, machine), from the worker's readiness to the drain's end. */
    cpuPerTaskUs?: Record<string, number>
  }
  lifecycle?: { closed: Record<string, LifecycleFigure>; open?: LifecycleFigure & { offeredRate: number } }
  /** The same closed loop with 1 and then 2 worker processes; ratio = 2 workers / 1 worker tasks/s. */
  scaling?: {
    concurrency: number
    oneWorker: ScalingFigure
    twoWorkers: ScalingFigure
    ratio: number | null
    /** Quick mode: the one-worker row is this lifecycle run's, not measured again. */
    oneWorkerFrom?: string
  }
  /**
   * The scaling loop on the bench's Redis and on a local Redis Cluster of `masters`
   * masters (JOB_SHARDS 1 and `masters`), with 1..3 worker processes each; the
   * cluster rows' tasks are checked before the cluster is torn down.
   */
  cluster?: { concurrency: number; masters: number; rows: ClusterFigure[]; integrity?: TaskCheck }
  /** Where each role's CPU went in a closed loop at `concurrency`: its profile under load, less its start-up's (phases/profile.ts). */
  profile?: { concurrency: number; roles: Record<'api' | 'worker', ProfileSummary> }
  /**
   * From the worker's commit to a socket's receive. With many sockets (keyed
   * by count and shape), p50/p99 are those of the probe sockets on the feed; allSockets includes the load processes'
   * own queueing. fromStatementStart times the same messages from the
   * statement's start (task_events.at), so it adds the statement and its fsync.
   * Reference (d) is timed from when each message was due; offsetsMs are its
   * events' times within a task, the all-feed run's medians (as pushed to the events stream),
   * and bytes their lengths, the all-feed run's median message of each status.
   */
  events?: Record<
    string,
    LatencySummary & {
      sockets: number
      shape?: ManySocketsShape
      fromStatementStart?: LatencyPoints
      allSockets?: LatencyPoints
      offsetsMs?: number[]
      bytes?: number[]
    }
  >
  fanout?: {
    sockets: number
    offeredPerSecond: number
    deliveredPerSecond: number
    closedByServer: number
    apiRssBeforeMiB: number
    apiRssAfterMiB: number
    bytesPerSocket: number
  }
  resources: {
    idle?: { apiMiB: number | null; workerMiB: number | null }
    load?: { apiMiB: number; workerMiB: number; during: string }
    /** Cores used per process group during a phase: what saturates the machine. */
    cpu: Record<string, Record<string, number>>
    /** Wakes per second per process group during a phase (procfs wakeCount): how well each batches its work. */
    wakes?: Record<string, Record<string, number>>
  }
  integrity?: TaskCheck
  /** Wall time of each phase, so quick mode's one-minute budget can be checked. */
  phaseSeconds?: Record<string, number>
}

export interface Context {
  opts: Options
  env: BenchEnv
  port: number
  api: (Role & { url: string }) | null
  worker: (Role & { metricsUrl: string }) | null
  results: Results
  /** Tasks the load processes saw created (2xx), to compare with the rows. */
  posted: number
  socketMissing: number
  socketDuplicates: number
}

/** A CPU measurement started when a load's window opens (told the load process's pid) and stopped when it closes. */
export type WindowCpu = (loadPid: number) => { stop(): Record<string, number> | Promise<Record<string, number>> }

/**
 * Runs one load process to completion and returns its result message. With
 * `cpu`, that is measured over the load's window alone (the process says when
 * it opens and closes), not its start-up, warm-up or drain.
 */
export async function runLoad<T = any>(
  name: string,
  file: string,
  job: unknown,
  timeoutMs = 600_000,
  cpu?: WindowCpu,
): Promise<{ result: T; cores?: Record<string, number> }> {
  const child = spawnChild(name, ['bun', `scripts/bench/${file}`], { BENCH_JOB: JSON.stringify(job) })
  try {
    const window = (state: string) => child.next((m) => m?.type === 'error' || (m?.type === 'window' && m.state === state), timeoutMs)
    const [opened, closed] = cpu ? [window('open'), window('closed')] : []
    const result = expectReply<T>(child, 'result', timeoutMs)
    // Whichever the child's error or exit reaches is thrown below; the others must not go unhandled.
    for (const p of [opened, closed, result]) p?.catch(() => {})
    const check = (m: { type?: string; message?: string }) => {
      if (m?.type === 'error') throw new Error(`${name}: ${m.message}`)
    }
    let cores: Record<string, number> | undefined
    if (cpu) {
      check(await opened)
      const measuring = cpu(child.pid)
      check(await closed)
      cores = await measuring.stop()
    }
    return { result: await result, cores }
  } finally {
    await child.stop('SIGTERM', 2000)
  }
}

export const MiB = (bytes: number | null) => (bytes === null ? null : Math.round((bytes / 1048576) * 10) / 10)
export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits

/** Microseconds of CPU per task, from cores busy over a window and tasks per second in it. */
export const cpuPerTaskUs = (cores: number | undefined, perSecond: number | undefined): number | undefined =>
  cores === undefined || !perSecond ? undefined : Math.round((cores * 1e6) / perSecond)
