import { MiB, round, type Context } from '../context'
import { sampleRss } from '../procfs'
import { startWorker } from '../system'
import { postTasks } from './create'
import { activeTasks } from './settle'

/**
 * N tasks queued while no worker runs (tasks the create phase left count
 * towards N; the rest are POSTed), then one worker started: how fast it drains
 * them, and whether its memory stays flat while it does.
 */
export async function runBacklog(ctx: Context) {
  if (ctx.worker) throw new Error('backlog starts with the worker stopped')
  const waiting = await activeTasks(ctx)
  const toAdd = Math.max(0, ctx.opts.backlogTasks - waiting)
  let enqueuePerSecond = 0
  if (toAdd > 0) {
    console.log(`backlog: POSTing ${toAdd} tasks (c64, no worker)`)
    enqueuePerSecond = await postTasks(ctx, 'backlog enqueue', toAdd)
  }
  const tasks = await activeTasks(ctx)
  console.log(`backlog: starting one worker on ${tasks} queued tasks`)

  let sampler: ReturnType<typeof sampleRss> | null = null
  const t0 = performance.now()
  ctx.worker = await startWorker(ctx.env, ctx.port, (pid) => (sampler = sampleRss(pid, 50)))
  // Samples from before the runtime loaded are not the worker's memory; start from readiness.
  const ready = performance.now()
  const deadline = Date.now() + Math.max(60_000, tasks * 10)
  while ((await activeTasks(ctx)) > 0) {
    if (Date.now() > deadline) throw new Error('backlog did not drain in time')
    await Bun.sleep(100)
  }
  const wallSeconds = (performance.now() - t0) / 1000
  const stopped = sampler!.stop()
  const samples = stopped.samples.filter((s) => s.at >= ready)
  const peak = stopped.peak

  // From the first claim to the last completion, as Postgres timed them: no process start-up, no polling interval.
  const { rows } = await ctx.env.pool.query<{ n: string; secs: number }>(
    `select count(*) as n, extract(epoch from max(finished_at) - min(started_at))::float8 as secs from tasks where status = 'COMPLETED' and started_at >= now() - make_interval(secs => $1)`,
    [wallSeconds + 1],
  )
  const drained = Number(rows[0]!.n)
  // Memory is "flat" when the second half of the drain needs no more than the first: nothing grows with the backlog.
  const mid = samples.length ? (samples[0]!.at + samples.at(-1)!.at) / 2 : 0
  const firstHalf = Math.max(0, ...samples.filter((s) => s.at <= mid).map((s) => s.rss))
  const secondHalf = Math.max(0, ...samples.filter((s) => s.at > mid).map((s) => s.rss))
  ctx.results.backlog = {
    tasks: drained,
    enqueuePerSecond,
    drainPerSecond: rows[0]!.secs > 0 ? round(drained / rows[0]!.secs) : 0,
    drainWallSeconds: round(wallSeconds, 2),
    workerRssStartMiB: MiB(samples[0]?.rss ?? 0)!,
    workerRssPeakMiB: MiB(peak)!,
    workerRssFirstHalfMiB: MiB(firstHalf)!,
    workerRssSecondHalfMiB: MiB(secondHalf)!,
    flat: secondHalf <= firstHalf * 1.1,
  }
}
