/** What one run measures and how big: quick by default, --full for the figures in docs/performance.md. */
export const phaseNames = ['references', 'create', 'backlog', 'lifecycle', 'scaling', 'events', 'fanout', 'profile', 'cluster'] as const
export type PhaseName = (typeof phaseNames)[number]
/**
 * Run unless --only says otherwise. `cluster` starts a Redis Cluster of its own, so only --cluster (or --only cluster) asks
 * for it; `profile` restarts both roles twice, which quick mode's minute has no room for, so it runs in --full.
 */
const defaultPhases = phaseNames.filter((p) => p !== 'cluster' && p !== 'profile')

export interface Options {
  mode: 'quick' | 'full'
  phases: Set<PhaseName>
  /** Each measurement window, after its warm-up. */
  windowMs: number
  /** How long a role is left idle before its idle memory is read. */
  idleMs: number
  warmupMs: number
  pgbenchSeconds: number
  httpConcurrencies: number[]
  lifecycleConcurrencies: number[]
  /** Offered rate of the open-loop lifecycle run, tasks/s. */
  openLoopRate: number
  /** Reference (a) is measured at each lifecycle concurrency, in variants: each variant's warm-up and window (reference (c)'s too). */
  referenceWarmupMs: number
  referenceWindowMs: number
  /** Which variants of reference (a) are tried: all of them, or one setting at a time (reference-variants.ts). */
  referenceSearch: 'every combination' | 'one setting at a time'
  backlogTasks: number
  /** The large socket count of the event-latency and fan-out phases. */
  manySockets: number
  /** Load processes the many sockets are spread over (client CPU and fds). */
  socketProcesses: number
  /** Tasks/s driven while timing events: light, so the figure is latency, not queueing. */
  eventRateFew: number
  eventRateMany: number
  /** Messages/s offered to all sockets together in the fan-out phase (2x the 500k target). */
  fanoutOfferedMessages: number
  /** A markdown file to write the report to (docs/performance.md), beside printing it. */
  write: string | null
}

const usage = `usage: bun run bench [--full] [--cluster] [--only ${phaseNames.join(',')}] [--rate N] [--write FILE.md]
  --cluster  also run the cluster phase: lifecycle throughput on the bench's Redis and on a local 3-master Redis Cluster
             (JOB_SHARDS=1 and 3), with 1, 2 and 3 workers; \`--cluster --only cluster\` runs just that`

export function parseOptions(argv: string[]): Options {
  const full = argv.includes('--full')
  const o: Options = full
    ? {
        mode: 'full',
        phases: new Set([...defaultPhases, 'profile']),
        windowMs: 10_000,
        idleMs: 1000,
        warmupMs: 2000,
        pgbenchSeconds: 10,
        httpConcurrencies: [1, 16, 64],
        lifecycleConcurrencies: [16, 64],
        openLoopRate: 200,
        referenceWarmupMs: 1000,
        referenceWindowMs: 3000,
        referenceSearch: 'every combination',
        backlogTasks: 100_000,
        manySockets: 10_000,
        socketProcesses: 2,
        eventRateFew: 20,
        eventRateMany: 4,
        fanoutOfferedMessages: 1_000_000,
        write: null,
      }
    : {
        mode: 'quick',
        phases: new Set(defaultPhases),
        // Quick mode has a minute for every default phase on 2 cores: short windows, fewer sockets.
        windowMs: 1000,
        idleMs: 500,
        warmupMs: 500,
        pgbenchSeconds: 2,
        // The create target's concurrency only (and reference (c) at it).
        httpConcurrencies: [64],
        lifecycleConcurrencies: [16, 64],
        openLoopRate: 200,
        referenceWarmupMs: 150,
        referenceWindowMs: 400,
        referenceSearch: 'one setting at a time',
        backlogTasks: 5000,
        manySockets: 500,
        socketProcesses: 2,
        eventRateFew: 20,
        eventRateMany: 4,
        fanoutOfferedMessages: 1_000_000,
        write: null,
      }
  let cluster = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--full') continue
    if (a === '--cluster') {
      cluster = true
      continue
    }
    if (a === '--only' || a.startsWith('--only=')) {
      const list = a.startsWith('--only=') ? a.slice(7) : (argv[++i] ?? '')
      const names = list
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
      const bad = names.filter((n) => !(phaseNames as readonly string[]).includes(n))
      if (bad.length || names.length === 0) throw new Error(`unknown phase ${bad.join(', ') || '(none)'}; ${usage}`)
      o.phases = new Set(names as PhaseName[])
    } else if (a === '--rate' || a.startsWith('--rate=')) {
      const v = Number(a.startsWith('--rate=') ? a.slice(7) : argv[++i])
      if (!(v > 0)) throw new Error(`--rate needs a positive number; ${usage}`)
      o.openLoopRate = v
    } else if (a === '--write' || a.startsWith('--write=')) {
      const file = a.startsWith('--write=') ? a.slice(8) : argv[++i]
      if (!file?.endsWith('.md')) throw new Error(`--write needs a markdown file name, e.g. docs/performance.md; ${usage}`)
      o.write = file
    } else if (a === '--help' || a === '-h') {
      console.log(usage)
      process.exit(0)
    } else {
      throw new Error(`unknown argument ${a}; ${usage}`)
    }
  }
  if (cluster) o.phases.add('cluster')
  return o
}
