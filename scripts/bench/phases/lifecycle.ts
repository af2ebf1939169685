import type pg from 'pg'
import { Histogram, type HistogramData } from '../histogram'
import { MiB, round, runLoad, type Context, type LifecycleFigure, type WindowCpu } from '../context'
import type { LifecycleJob } from '../load-lifecycle'
import { measureCpu, sampleRss } from '../procfs'
import { startWorker } from '../system'
import { settle, vacuum } from './settle'
import { LoopRunner } from './references'
import { describeVariant, plainVariant } from '../reference-variants'

export interface LifecycleResult {
  windowMs: number
  warmupMs: number
  completedInWindow: number
  latency: HistogramData
  answers: HistogramData
  posted: number
  postErrors: number
  firstError: string | null
  missing: number
  duplicates: number
  cpuSeconds: number
  uptimeMs: number
  /** The timed tasks and when their COMPLETED reached the load process, on the wall clock. */
  received: { ids: number[]; wallMs: number[] }
}

/** The newest task's id (0 with none): a phase's tasks are the ones above it. */
export const maxId = async (ctx: Context) => Number((await ctx.env.pool.query('select coalesce(max(id), 0) as id from tasks')).rows[0].id)

/**
 * Where a task's time goes, from the row's own timestamps: POST to claim
 * (created_at -> started_at: XADD, XREADGROUP, claim UPDATE), claim to
 * completion (started_at -> finished_at: PROCESSING event, handler, finish
 * UPDATE starting), and finish to the socket (finished_at -> the load
 * process's receive: the finish statement and its commit, the push, the hub,
 * the socket). Every stage covers the same tasks: those the load timed in
 * its window. The HTTP answer overlaps the queue stage. Deliver compares two
 * clocks, Postgres's and the load process's: the bench runs both on one host.
 */
export async function lifecycleStages(pool: Pick<pg.Pool, 'query'>, afterId: number, upToId: number, received: LifecycleResult['received']) {
  const { rows } = await pool.query<Record<string, number | null>>(
    `with seen as (select * from unnest($3::bigint[], $4::float8[]) as s(id, wall_ms)),
     timed as (
       select extract(epoch from started_at - created_at) * 1000 as queue,
              extract(epoch from finished_at - started_at) * 1000 as run,
              seen.wall_ms - extract(epoch from finished_at) * 1000 as deliver
         from tasks join seen using (id)
        where id > $1 and id <= $2 and status = 'COMPLETED')
     select
       percentile_cont(0.5) within group (order by queue) as queue_p50,
       percentile_cont(0.99) within group (order by queue) as queue_p99,
       percentile_cont(0.5) within group (order by run) as run_p50,
       percentile_cont(0.99) within group (order by run) as run_p99,
       percentile_cont(0.5) within group (order by deliver) as deliver_p50,
       percentile_cont(0.99) within group (order by deliver) as deliver_p99
     from timed`,
    [afterId, upToId, received.ids, received.wallMs],
  )
  return Object.fromEntries(Object.entries(rows[0]!).map(([k, v]) => [k, v === null ? null : round(Number(v), 2)]))
}

/** The worker's looks in Postgres so far (taskline_claims_total) by result; null when its metrics cannot be read. */
async function looksSoFar(ctx: Context): Promise<{ claimed: number; empty: number } | null> {
  const url = ctx.worker?.metricsUrl
  const text = url
    ? await fetch(url).then(
        (r) => r.text(),
        () => null,
      )
    : null
  return text === null ? null : claimCounts(text)
}

/** taskline_claims_total from a Prometheus text page, by result; null when the page has no such series. */
export function claimCounts(text: string): { claimed: number; empty: number } | null {
  const series = text.split('\n').filter((l) => l.startsWith('taskline_claims_total{'))
  if (series.length === 0) return null
  const count = (result: string) =>
    Number(
      series
        .find((l) => l.includes(`result="${result}"`))
        ?.split(' ')
        .at(-1) ?? 0,
    )
  return { claimed: count('claimed'), empty: count('empty') }
}

/** POST to its answer, timed by the load process: the task is in Postgres, its job and event not yet pushed. */
function answered(h: HistogramData) {
  const { p50, p99 } = Histogram.from([h]).summary()
  return { answer_p50: p50 === null ? null : round(p50, 2), answer_p99: p99 === null ? null : round(p99, 2) }
}

/**
 * One run of the lifecycle load process against the running system, as a
 * figure; its tasks count towards the integrity check. Shared with the scaling
 * and cluster phases so all measure the same way. `cpu`, when given, is
 * measured over the load's window alone (as reference (a)'s is over its own),
 * not its start-up, warm-up or drain.
 */
export async function lifecycleLoad(
  ctx: Context,
  name: string,
  shape: { concurrency?: number; rate?: number },
  cpu?: WindowCpu,
  /** Whether to count ctx.worker's looks: only where it is the one worker (not the scaling and cluster runs). */
  countLooks = false,
): Promise<{ figure: LifecycleFigure; loadCores: number; cpu?: Record<string, number> }> {
  const firstId = await maxId(ctx)
  const job = {
    apiUrl: ctx.api!.url,
    wsUrl: `${ctx.api!.url.replace('http', 'ws')}/ws/tasks/`,
    ...shape,
    warmupMs: ctx.opts.warmupMs,
    durationMs: ctx.opts.windowMs,
    drainMs: 15_000,
    token: ctx.env.token,
  } satisfies LifecycleJob
  const limit = 60_000 + ctx.opts.warmupMs + ctx.opts.windowMs
  const looked = countLooks ? await looksSoFar(ctx) : null
  const { result: r, cores } = await runLoad<LifecycleResult>(name, 'load-lifecycle.ts', job, limit + 20_000, cpu)
  const lookedAfter = looked ? await looksSoFar(ctx) : null
  ctx.posted += r.posted
  ctx.socketMissing += r.missing
  ctx.socketDuplicates += r.duplicates
  if (r.warmupMs >= 19_900) console.error(`  ${name}: fewer tasks than clients completed within 20 s of warm-up; the window measured the stall`)
  else if (r.warmupMs > ctx.opts.warmupMs + 500)
    console.error(`  ${name}: the first tasks took ${(r.warmupMs / 1000).toFixed(1)} s to complete; measured after that`)
  if (r.postErrors) console.error(`  ${name}: ${r.postErrors} failed POSTs (${r.firstError})`)
  const figure = {
    ...Histogram.from([r.latency]).summary(),
    stagesMs: { ...answered(r.answers), ...(await lifecycleStages(ctx.env.pool, firstId, await maxId(ctx), r.received)) },
    perSecond: round(r.completedInWindow / (r.windowMs / 1000)),
    missing: r.missing,
    duplicates: r.duplicates,
    postErrors: r.postErrors,
    warmupMs: Math.round(r.warmupMs),
    ...(looked && lookedAfter ? { looks: { claimed: lookedAfter.claimed - looked.claimed, empty: lookedAfter.empty - looked.empty, tasks: r.posted } } : {}),
  }
  return { figure, loadCores: round(r.cpuSeconds / (r.uptimeMs / 1000), 2), cpu: cores }
}

/**
 * POST to COMPLETED seen on a socket: a closed loop of one client (the floor),
 * then one at each concurrency, then an open loop at a fixed rate. Right
 * before each closed loop, reference (a) at as many loops runs again with the
 * same warm-up and window (its strongest variant; one loop has only one): on
 * a shared machine whose speed drifts over minutes, the ratio compares two
 * runs a moment apart, not one from the references phase.
 */
export async function runLifecycle(ctx: Context) {
  ctx.worker ??= await startWorker(ctx.env, ctx.port)
  await settle(ctx)
  const closed: Record<string, LifecycleFigure> = {}
  const last = ctx.opts.lifecycleConcurrencies.at(-1)
  const found = ctx.results.references.loop ?? {}
  const concurrencies = ctx.opts.lifecycleConcurrencies
  const runner = concurrencies.some((c) => found[c]) ? await LoopRunner.start(ctx, concurrencies[0]!) : null
  try {
    // A lone client first: each task's hops with nothing queued, the floor the loaded figures stand on.
    for (const c of [1, ...concurrencies]) closed[c] = await closedLoop(ctx, c, c === last, runner)
  } finally {
    await runner?.stop()
  }
  console.log(`lifecycle: open loop ${ctx.opts.openLoopRate}/s`)
  const { figure: open } = await lifecycleLoad(ctx, `lifecycle open ${ctx.opts.openLoopRate}/s`, { rate: ctx.opts.openLoopRate }, undefined, true)
  ctx.results.lifecycle = { closed, open: { ...open, offeredRate: ctx.opts.openLoopRate } }
}

/** One closed loop at c clients, reference (a) run right before it when the runner is there. */
async function closedLoop(ctx: Context, c: number, underLoad: boolean, runner: LoopRunner | null): Promise<LifecycleFigure> {
  await vacuum(ctx)
  // One loop has one way to run (one connection to each); more are run as the strongest variant the references found.
  const variant = c === 1 ? plainVariant(1) : ctx.results.references.loop?.[c]?.variant
  if (runner && variant) {
    console.log(`lifecycle: reference (a) again beside it, ${describeVariant(variant, c)}`)
    const beside = await runner.trial(c, variant, { warmupMs: ctx.opts.warmupMs, durationMs: ctx.opts.windowMs })
    ctx.results.references.loopBeside = { ...ctx.results.references.loopBeside, [c]: beside }
  }
  console.log(`lifecycle: closed loop c${c}`)
  // The largest concurrency is also the "under load" sample of memory and CPU.
  const rss = underLoad ? [sampleRss(ctx.api!.pid), sampleRss(ctx.worker!.pid)] : []
  const api = ctx.api!.pid
  const worker = ctx.worker!.pid
  let meter: ReturnType<typeof measureCpu> | undefined
  const { figure, loadCores, cpu } = await lifecycleLoad(
    ctx,
    `lifecycle c${c}`,
    { concurrency: c },
    (load) => {
      meter = measureCpu({ api: () => [api], worker: () => [worker], load: () => [load] })
      return meter
    },
    true,
  )
  ctx.results.resources.cpu[`lifecycle c${c}`] = { ...cpu, load: loadCores }
  if (meter) ctx.results.resources.wakes = { ...ctx.results.resources.wakes, [`lifecycle c${c}`]: meter.wakes }
  if (underLoad) {
    const [a, w] = rss.map((s) => s.stop().peak)
    ctx.results.resources.load = { apiMiB: MiB(a!)!, workerMiB: MiB(w!)!, during: `lifecycle c${c}` }
  }
  return figure
}
