/**
 * Reference (a) is the strongest bare loop found on this machine, not one
 * guess at it: the same per-task work run several ways, the fastest kept.
 * What varies, at a fixed number of loops (the lifecycle's clients):
 * - pool: pg connections in all, one per loop, per two loops or per four;
 * - processes: the loops in one Bun process, or split over two (the system
 *   under test has two: api and worker);
 * - Redis connections per process, every one auto-pipelined: one, or four
 *   with the loops spread over them.
 * Pure: the search and its wording, tested in test/bench.report.test.ts.
 */

export interface LoopVariant {
  processes: number
  /** pg connections over all processes (each process's pool gets its share). */
  pool: number
  /** ioredis connections of each process, enableAutoPipelining on each. */
  redisConnections: number
}

export interface LoopTrial extends LoopVariant {
  tasksPerSecond: number
  /** Microseconds of the whole machine's CPU per task during the trial's window. */
  cpuPerTaskUs?: number
  /** The same, of the loop processes, Postgres and Redis: where the loop's CPU goes, beside the product's. */
  cpuSplitUs?: CpuSplit
  /** Wakes per task of the loop processes, Postgres and Redis (procfs wakeCount). */
  wakesPerTask?: CpuSplit
}

export interface CpuSplit {
  loops?: number
  postgres?: number
  redis?: number
}

/** The strongest found at one loop count: its figure, the variant, and every trial behind the choice. */
export interface LoopFigure {
  loops: number
  tasksPerSecond: number
  cpuPerTaskUs?: number
  cpuSplitUs?: CpuSplit
  wakesPerTask?: CpuSplit
  variant: LoopVariant
  trials: LoopTrial[]
  /** How the variants were searched: every combination, or one setting at a time from the plain loop. */
  search: 'every combination' | 'one setting at a time'
}

type Dimension = { [K in keyof LoopVariant]: { key: K; values: number[] } }[keyof LoopVariant]

/** The settings tried, the plain loop's first: one process, a connection per loop, one Redis connection. */
export function dimensions(loops: number): Dimension[] {
  // The pool first: a search that starts there opens each pool size once.
  return [
    { key: 'pool', values: [...new Set([loops, Math.round(loops / 2), Math.round(loops / 4)].map((n) => Math.max(2, n)))] },
    { key: 'processes', values: [1, 2] },
    { key: 'redisConnections', values: [1, 4] },
  ]
}

export const plainVariant = (loops: number): LoopVariant => ({ processes: 1, pool: loops, redisConnections: 1 })

export const sameVariant = (a: LoopVariant, b: LoopVariant) => a.processes === b.processes && a.pool === b.pool && a.redisConnections === b.redisConnections

/** Every combination of the settings (full mode). */
export function everyVariant(loops: number): LoopVariant[] {
  let out: LoopVariant[] = [plainVariant(loops)]
  for (const d of dimensions(loops)) out = out.flatMap((v) => d.values.map((value) => ({ ...v, [d.key]: value })))
  return out
}

/**
 * One setting at a time (quick mode): from the plain loop, each setting's
 * other values are tried with the best found so far, and the faster kept.
 * `measure` runs one trial; every trial is returned, the fastest first.
 */
export async function searchVariants(loops: number, measure: (v: LoopVariant) => Promise<LoopTrial>, every: boolean): Promise<LoopTrial[]> {
  const trials: LoopTrial[] = []
  if (every) {
    for (const v of everyVariant(loops)) trials.push(await measure(v))
  } else {
    let best = await measure(plainVariant(loops))
    trials.push(best)
    for (const d of dimensions(loops)) {
      for (const value of d.values) {
        const v = { ...variantOf(best), [d.key]: value }
        if (trials.some((t) => sameVariant(t, v))) continue
        const t = await measure(v)
        trials.push(t)
        if (t.tasksPerSecond > best.tasksPerSecond) best = t
      }
    }
  }
  return [...trials].sort((a, b) => b.tasksPerSecond - a.tasksPerSecond)
}

export const variantOf = ({ processes, pool, redisConnections }: LoopVariant): LoopVariant => ({ processes, pool, redisConnections })

/** The figure of one loop count: the fastest trial's. */
export function strongest(loops: number, trials: LoopTrial[], search: LoopFigure['search']): LoopFigure {
  const best = trials.reduce((a, b) => (b.tasksPerSecond > a.tasksPerSecond ? b : a))
  return {
    loops,
    tasksPerSecond: best.tasksPerSecond,
    cpuPerTaskUs: best.cpuPerTaskUs,
    cpuSplitUs: best.cpuSplitUs,
    wakesPerTask: best.wakesPerTask,
    variant: variantOf(best),
    trials,
    search,
  }
}

export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : word.endsWith('s') ? 'es' : 's'}`

/** "2 processes x 8 loops, pg pool 16 (8 each), 1 Redis connection each": how one variant ran `loops` loops. */
export function describeVariant(v: LoopVariant, loops: number): string {
  const perProcess = Math.ceil(loops / v.processes)
  const pool = v.processes === 1 ? `pg pool ${v.pool}` : `pg pools ${v.pool} (${Math.ceil(v.pool / v.processes)} each)`
  const redis = `${plural(v.redisConnections, 'Redis connection')}${v.processes === 1 ? '' : ' each'}`
  return `${plural(v.processes, 'process')} x ${plural(perProcess, 'loop')}, ${pool}, ${redis}`
}

/** How far the strongest is ahead of the runner-up and of the plain loop (null when it is that one), as fractions. */
export function margins(f: LoopFigure): { overNext: number | null; overPlain: number | null } {
  const sorted = [...f.trials].sort((a, b) => b.tasksPerSecond - a.tasksPerSecond)
  const plain = f.trials.find((t) => sameVariant(t, plainVariant(f.loops)))
  const over = (t: LoopTrial | undefined) => (t && t.tasksPerSecond > 0 && !sameVariant(t, f.variant) ? f.tasksPerSecond / t.tasksPerSecond - 1 : null)
  return { overNext: over(sorted[1]), overPlain: over(plain) }
}
