import { cpuPerTaskUs, MiB, round, type Context } from '../context'
import { type GcResult, gcTaskType } from '../gc-handler'
import { bearer } from '../http1-client'
import { measureCpu, sampleRss } from '../procfs'
import { startWorker } from '../system'
import { postTasks } from './create'
import { activeTasks } from './settle'

/** When, in drained fractions of the backlog, the worker is asked for its heap after a forced collection; 1 is after the drain. */
export const heapCheckpoints = [0.25, 0.5, 0.75, 1] as const

/**
 * N tasks queued while no worker runs (tasks the create phase left count
 * towards N; the rest are POSTed), then one worker started: how fast it drains
 * them, and whether the heap it keeps stays flat while it does. The heap is
 * read after a full collection (a bench-gc task, scripts/bench/gc-handler.ts,
 * sent at the top priority so it runs next) at a quarter, half and three
 * quarters of the drain and after it; RSS, which moves with when the
 * collector last ran, is kept for the record.
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
  // Ready once its /metrics answers: it blocks in XREADGROUP only when the backlog is gone.
  ctx.worker = await startWorker(ctx.env, ctx.port, (pid) => (sampler = sampleRss(pid, 50)), 'metrics')
  // Samples from before the runtime loaded are not the worker's memory; start from readiness.
  const ready = performance.now()
  const workerPid = ctx.worker.pid
  const cpu = measureCpu({ worker: () => [workerPid] })
  const gcTasks: { drained: number; id: Promise<number | null> }[] = []
  const deadline = Date.now() + Math.max(60_000, tasks * 10)
  for (let left = await activeTasks(ctx); left > 0; left = await activeTasks(ctx)) {
    if (Date.now() > deadline) throw new Error('backlog did not drain in time')
    const drained = 1 - left / tasks
    const due = heapCheckpoints.filter((f) => f < 1 && f <= drained && !gcTasks.some((g) => g.drained === f))
    for (const f of due) gcTasks.push({ drained: f, id: postGcTask(ctx) })
    await Bun.sleep(100)
  }
  const wallSeconds = (performance.now() - t0) / 1000
  const cores = cpu.stop()
  const cpuSeconds = (performance.now() - ready) / 1000
  gcTasks.push({ drained: 1, id: postGcTask(ctx) })
  const stopped = sampler!.stop()
  const samples = stopped.samples.filter((s) => s.at >= ready)
  const peak = stopped.peak

  // From the first claim to the last completion, as Postgres timed them: no process start-up, no polling interval.
  const { rows } = await ctx.env.pool.query<{ n: string; secs: number }>(
    `select count(*) as n, extract(epoch from max(finished_at) - min(started_at))::float8 as secs from tasks where status = 'COMPLETED' and started_at >= now() - make_interval(secs => $1)`,
    [wallSeconds + 1],
  )
  const drained = Number(rows[0]!.n)
  // RSS peaks in each half, for the record: they move with when the collector ran, so they do not judge flatness.
  const mid = samples.length ? (samples[0]!.at + samples.at(-1)!.at) / 2 : 0
  const firstHalf = Math.max(0, ...samples.filter((s) => s.at <= mid).map((s) => s.rss))
  const secondHalf = Math.max(0, ...samples.filter((s) => s.at > mid).map((s) => s.rss))
  const heap = await heapAfterGc(ctx, gcTasks)
  ctx.results.resources.cpu['backlog drain'] = cores
  ctx.results.backlog = {
    tasks: drained,
    enqueuePerSecond,
    drainPerSecond: rows[0]!.secs > 0 ? round(drained / rows[0]!.secs) : 0,
    drainWallSeconds: round(wallSeconds, 2),
    workerRssStartMiB: MiB(samples[0]?.rss ?? 0)!,
    workerRssPeakMiB: MiB(peak)!,
    workerRssFirstHalfMiB: MiB(firstHalf)!,
    workerRssSecondHalfMiB: MiB(secondHalf)!,
    workerHeapAfterGc: heap,
    flat: heapFlat(heap),
    // From readiness to the last task gone: the worker's start-up is not the drain's.
    cpuPerTaskUs: Object.fromEntries(Object.entries(cores).map(([k, v]) => [k, cpuPerTaskUs(v, drained / cpuSeconds) ?? 0])),
  }
}

/** POSTs one bench-gc task at the top priority, so the worker runs it before the backlog's next; its id, or null if refused. */
async function postGcTask(ctx: Context): Promise<number | null> {
  const res = await fetch(`${ctx.api!.url}/api/tasks/`, {
    method: 'POST',
    headers: { ...bearer(ctx.env.token), 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'bench: heap after a collection', type: gcTaskType, payload: {}, priority: 10 }),
  })
  const body = (await res.json().catch(() => null)) as { id?: number } | null
  if (res.status !== 201 || typeof body?.id !== 'number') {
    console.error(`  backlog: the heap check was refused (${res.status}: ${JSON.stringify(body)})`)
    return null
  }
  ctx.posted++
  return body.id
}

/** Each checkpoint's heap after the collection, once its task has completed (within 10 s). */
async function heapAfterGc(ctx: Context, gcTasks: { drained: number; id: Promise<number | null> }[]): Promise<{ drained: number; mib: number }[]> {
  const out: { drained: number; mib: number }[] = []
  for (const g of gcTasks) {
    const id = await g.id
    if (id === null) continue
    for (const until = Date.now() + 10_000; Date.now() < until; await Bun.sleep(50)) {
      const { rows } = await ctx.env.pool.query<{ status: string; result: GcResult | null }>('select status, result from tasks where id = $1', [id])
      const row = rows[0]
      if (row?.status === 'COMPLETED' && row.result) {
        out.push({ drained: g.drained, mib: MiB(row.result.heap_size_bytes)! })
        break
      }
      if (row && row.status !== 'PENDING' && row.status !== 'PROCESSING') break
    }
  }
  return out
}

/**
 * Flat: the heap kept at three quarters of the drain is within a tenth (or
 * 1 MiB) of the heap kept at a quarter. Both are mid-drain, with as much in
 * flight; the first quarter (code loading, pools and batches filling) grows
 * the heap once, not with the tasks. null without both readings.
 */
export function heapFlat(heap: { drained: number; mib: number }[]): boolean | null {
  const at = (f: number) => heap.find((h) => h.drained === f)?.mib
  const [early, late] = [at(0.25), at(0.75)]
  if (early === undefined || late === undefined) return null
  return late <= Math.max(early * 1.1, early + 1)
}
