import { type Child, expectReply, spawnChild } from '../children'
import { cpuPerTaskUs, round, type Context } from '../context'
import { runPgbench } from '../pgbench'
import { referenceGroup, referenceKeys, referenceTable, type TrialCommand, type TrialResult } from '../reference-loop'
import { describeVariant, type LoopTrial, type LoopVariant, margins, searchVariants, strongest } from '../reference-variants'
import { createScratchTable } from '../scratch-table'
import { freePort, redisUrl } from '../system'
import { httpLoad } from './http-figure'

/** pgbench's clients for each script: the single INSERT at the create target's concurrency, the lifecycle's three statements at 16. */
export const pgbenchClients = { insert: 64, lifecycle: 16 }

/**
 * The references every figure is judged against, run before the system
 * starts so they have the machine to themselves.
 */
export async function runReferences(ctx: Context) {
  const { opts, env, results } = ctx
  const refs = results.references

  // Quick mode runs the one a target is judged against; the three-statement lifecycle is for the record.
  const clients = opts.mode === 'full' ? pgbenchClients : { insert: pgbenchClients.insert }
  console.log(
    `references: pgbench ${Object.entries(clients)
      .map(([script, c]) => `${script} c${c}`)
      .join(', ')}`,
  )
  const pgb = await runPgbench(env.pool, env.databaseUrl, opts.pgbenchSeconds, clients)
  if (pgb.insert !== undefined) {
    ;[refs.pgbenchInsertTps, refs.pgbenchInsertClients, refs.pgbenchInsertCpuUs] = [round(pgb.insert.tps), pgbenchClients.insert, pgb.insert.cpuPerTxUs]
  }
  if (pgb.lifecycle !== undefined) [refs.pgbenchLifecycleTps, refs.pgbenchLifecycleClients] = [round(pgb.lifecycle.tps), pgbenchClients.lifecycle]

  await strongLoops(ctx)

  // A ceiling that holds still: the short windows of reference (a)'s trials are enough for it.
  console.log('references: Bun hello-world server')
  const port = freePort()
  const hello = spawnChild('hello-server', ['bun', 'scripts/bench/hello-server.ts'], { PORT: port })
  try {
    await expectReply(hello, 'ready', 10_000)
    refs.hello = {}
    for (const c of opts.httpConcurrencies) {
      const { figure } = await httpLoad(`hello c${c}`, {
        url: `http://127.0.0.1:${port}/`,
        method: 'GET',
        concurrency: c,
        warmupMs: opts.referenceWarmupMs,
        durationMs: opts.referenceWindowMs,
      })
      refs.hello[c] = figure
    }
  } finally {
    await hello.stop()
  }
}

/** Processes a trial may run its loops in: the most any variant uses (reference-variants.ts). */
const LOOP_PROCESSES = 2

/** A trial's warm-up and window: the references phase's short ones, or a lifecycle window's. */
export interface TrialTiming {
  warmupMs: number
  durationMs: number
}

/**
 * Reference (a)'s loop processes, started once for a series of trials (a
 * trial opens its own connections; the runtime stays warm) with the scratch
 * table and stream they write to, all removed by stop().
 */
export class LoopRunner {
  private constructor(
    private readonly ctx: Context,
    private readonly procs: Child[],
  ) {}

  /** Started, and warmed by one unrecorded trial: whichever variant ran first would otherwise be measured cold (JIT). */
  static async start(ctx: Context, warmLoops: number): Promise<LoopRunner> {
    const keys = referenceKeys(ctx.env.keyPrefix)
    await createScratchTable(ctx.env.pool, referenceTable)
    await ctx.env.redis.xgroup('CREATE', keys.jobs, referenceGroup, '0', 'MKSTREAM')
    const procs = Array.from({ length: LOOP_PROCESSES }, (_, i) => spawnChild(`reference-loop ${i}`, ['bun', 'scripts/bench/reference-loop.ts']))
    const runner = new LoopRunner(ctx, procs)
    try {
      await Promise.all(procs.map((p) => expectReply(p, 'started', 20_000)))
      await runner.trial(warmLoops, { processes: LOOP_PROCESSES, pool: warmLoops, redisConnections: 1 })
    } catch (e) {
      await runner.stop()
      throw e
    }
    return runner
  }

  /** One variant at `loops` loops: tasks/s in the window, and the machine's CPU per task over the same window. */
  async trial(loops: number, v: LoopVariant, timing: TrialTiming = referenceTiming(this.ctx)): Promise<LoopTrial> {
    const { env } = this.ctx
    const used = this.procs.slice(0, v.processes)
    // A process this trial does not use holds no connections meanwhile.
    for (const p of this.procs.slice(v.processes)) p.send({ cmd: 'close' })
    await Promise.all(this.procs.slice(v.processes).map((p) => expectReply(p, 'closed', 30_000)))
    for (const [i, p] of used.entries()) {
      p.send({
        cmd: 'trial',
        databaseUrl: env.databaseUrl,
        redisUrl,
        keyPrefix: env.keyPrefix,
        loops: share(loops, v.processes, i),
        pool: share(v.pool, v.processes, i),
        redisConnections: v.redisConnections,
        consumerPrefix: `p${i}-loop-`,
        ...timing,
      } satisfies TrialCommand)
    }
    await Promise.all(used.map((p) => expectReply(p, 'ready', 30_000)))
    for (const p of used) p.send({ cmd: 'go' })
    const replies = await Promise.all(used.map((p) => expectReply<TrialResult>(p, 'result', 60_000 + timing.warmupMs + timing.durationMs)))
    const tasks = replies.reduce((n, r) => n + r.tasks, 0)
    const perSecond = tasks / (timing.durationMs / 1000)
    // Every process read the machine's, Postgres's and Redis's busy time over its own window; the first one's is the trial's.
    const { machine, postgres, redis } = replies[0]!.cores
    const loopsCores = replies.reduce((sum, r) => sum + r.cores.loops, 0)
    const wakes = replies[0]!.wakes
    const perTask = (n: number) => round(n / perSecond, 2)
    return {
      ...v,
      tasksPerSecond: round(perSecond),
      cpuPerTaskUs: cpuPerTaskUs(machine, perSecond),
      cpuSplitUs: { loops: cpuPerTaskUs(loopsCores, perSecond), postgres: cpuPerTaskUs(postgres, perSecond), redis: cpuPerTaskUs(redis, perSecond) },
      ...(perSecond > 0
        ? {
            wakesPerTask: {
              loops: perTask(replies.reduce((sum, r) => sum + r.wakes.loops, 0)),
              postgres: perTask(wakes.postgres),
              redis: perTask(wakes.redis),
            },
          }
        : {}),
    }
  }

  async stop(): Promise<void> {
    const { env } = this.ctx
    const keys = referenceKeys(env.keyPrefix)
    await Promise.all(this.procs.map((p) => p.stop('SIGTERM', 3000)))
    await env.pool.query(`drop table if exists ${referenceTable}`)
    await env.redis.del(keys.jobs, keys.events)
  }
}

const referenceTiming = ({ opts }: Context): TrialTiming => ({ warmupMs: opts.referenceWarmupMs, durationMs: opts.referenceWindowMs })

/**
 * Reference (a) at each lifecycle concurrency: the variants of the bare loop
 * tried one after another (every combination in full mode, one setting at a
 * time in quick mode), the fastest kept with its machine CPU per task.
 */
async function strongLoops(ctx: Context) {
  const { opts, results } = ctx
  const runner = await LoopRunner.start(ctx, opts.lifecycleConcurrencies[0]!)
  try {
    results.references.loop = {}
    const every = opts.referenceSearch === 'every combination'
    for (const loops of opts.lifecycleConcurrencies) {
      console.log(`references: bare pg+ioredis loop x${loops}, ${every ? 'every combination of' : 'one at a time,'} pool size, processes, Redis connections`)
      const trials = await searchVariants(loops, (v) => runner.trial(loops, v), every)
      const figure = strongest(loops, trials, opts.referenceSearch)
      results.references.loop[loops] = figure
      const { overNext } = margins(figure)
      console.log(
        `  strongest at ${loops} loops: ${describeVariant(figure.variant, loops)}, ${Math.round(figure.tasksPerSecond)} tasks/s` +
          (overNext === null ? '' : ` (+${(overNext * 100).toFixed(0)}% over the next)`),
      )
    }
  } finally {
    await runner.stop()
  }
}

/** Splits n over k as evenly as whole numbers go. */
const share = (n: number, k: number, i: number) => Math.floor(n / k) + (i < n % k ? 1 : 0)
