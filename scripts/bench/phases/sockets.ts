import { expectReply, spawnChild, type Child } from '../children'
import { Histogram, type HistogramData, type LatencySummary } from '../histogram'
import { MiB, round, type Context, type LatencyPoints, type ManySocketsShape } from '../context'
import type { WsJob } from '../load-ws'
import type { PublishCommand } from '../publish-server'
import { measureCpu, rssBytes } from '../procfs'
import { freePort, redisUrl, startApi, startWorker } from '../system'
import { streamKeys } from '../../../src/infra/stream-keys'
import { fieldsToEvent } from '../../../src/domain/task-events/task-event'
import type { Redis } from '../../../src/infra/redis'
import { createBody, postTasks } from './create'
import { httpLoad } from './http-figure'
import { maxId } from './lifecycle'
import { settle } from './settle'

interface Stopped {
  messages: number
  windowMs: number
  latency: HistogramData
  latencyFromStatementStart: HistogramData
  open: number
  closedByServer: number
  closeCodes: Record<string, number>
}

const pick = ({ p50, p99, max }: LatencySummary) => ({ p50, p99, max })

/**
 * Idle sockets held by `processes` load processes, measured on command: on
 * the all-tasks feed, or with `taskIds`, each watching one of those tasks.
 */
async function openSockets(ctx: Context, total: number, processes: number, { taskIds, wsUrl }: { taskIds?: number[]; wsUrl?: string } = {}) {
  const children: Child[] = []
  const per = Math.ceil(total / processes)
  for (let i = 0, left = total; left > 0; i++, left -= per) {
    const count = Math.min(per, left)
    children.push(
      spawnChild(`sockets ${i}`, ['bun', 'scripts/bench/load-ws.ts'], {
        BENCH_JOB: JSON.stringify({
          wsUrl: wsUrl ?? `${ctx.api!.url.replace('http', 'ws')}/ws/tasks/`,
          databaseUrl: ctx.env.databaseUrl,
          redisUrl,
          eventsKey: streamKeys(ctx.env.keyPrefix).shards[0]!.events,
          sockets: count,
          taskIds: taskIds?.slice(i * per, i * per + count),
          openConcurrency: 100,
          // Reference (d) is no Taskline server: it takes no token, and selects no subprotocol.
          token: wsUrl ? undefined : ctx.env.token,
        } satisfies WsJob),
      }),
    )
  }
  const ready = await Promise.all(children.map((c) => expectReply<{ opened: number; failed: number; firstError: string | null }>(c, 'ready', 180_000)))
  const opened = ready.reduce((n, r) => n + r.opened, 0)
  const failed = ready.reduce((n, r) => n + r.failed, 0)
  if (failed) console.error(`  ${failed} of ${total} sockets failed to open (${ready.find((r) => r.firstError)?.firstError})`)
  return {
    opened,
    children,
    async close() {
      for (const c of children) c.send({ cmd: 'close' })
      await Promise.all(children.map((c) => c.stop('SIGTERM', 3000).catch(() => {})))
    },
  }
}
type SocketSet = Awaited<ReturnType<typeof openSockets>>

function startCounting(sets: SocketSet[], latency: boolean) {
  for (const c of sets.flatMap((s) => s.children)) c.send({ cmd: 'start', latency })
}

/** What each load process of each set counted since startCounting. */
async function stopCounting(sets: SocketSet[]): Promise<Stopped[][]> {
  for (const c of sets.flatMap((s) => s.children)) c.send({ cmd: 'stop' })
  return Promise.all(sets.map((s) => Promise.all(s.children.map((c) => expectReply<Stopped>(c, 'stopped', 120_000)))))
}

/**
 * Counts (and with latency, times) what each set of sockets gets while `rate`
 * tasks/s are POSTed; one figure per set, all measured in the same window.
 */
async function measure(
  ctx: Context,
  sets: SocketSet[],
  rate: number,
  latency: boolean,
  body: { title: string; payload: { duration_ms: number; steps?: number } } = createBody,
) {
  startCounting(sets, latency)
  const { raw } = await httpLoad(`driver ${rate}/s`, {
    url: `${ctx.api!.url}/api/tasks/`,
    method: 'POST',
    body,
    concurrency: 1,
    warmupMs: 0,
    durationMs: ctx.opts.windowMs,
    rate,
    token: ctx.env.token,
  })
  ctx.posted += raw.created
  // Timing needs the last events' messages too; a throughput count stops with the load.
  if (latency) await Bun.sleep(500)
  const bySet = await stopCounting(sets)
  return sets.map((set, i) => ({
    // PENDING, PROCESSING, one progress event per step but the last, COMPLETED.
    offeredPerSecond: (raw.created * (2 + (body.payload.steps ?? 1)) * set.opened) / (raw.elapsedMs / 1000),
    deliveredPerSecond: bySet[i]!.reduce((n, s) => n + s.messages / (s.windowMs / 1000), 0),
    latency: Histogram.from(bySet[i]!.map((s) => s.latency)).summary(),
    fromStatementStart: Histogram.from(bySet[i]!.map((s) => s.latencyFromStatementStart)).summary(),
    closedByServer: bySet[i]!.reduce((n, s) => n + s.closedByServer, 0),
  }))
}

/**
 * Sockets of a process of their own, opened after the many: they time what
 * the server does (the last subscribers of each publish), while the many
 * sockets' own figure also holds their load process working through a
 * thousand messages per event on the same two cores.
 */
const PROBE_SOCKETS = 20

/** The ids of `n` tasks, POSTing (and letting the worker finish) what is missing. */
async function taskIdsToWatch(ctx: Context, n: number): Promise<number[]> {
  const firstIds = async () => (await ctx.env.pool.query<{ id: string }>('select id from tasks order by id limit $1', [n])).rows.map((r) => Number(r.id))
  const ids = await firstIds()
  if (ids.length === n) return ids
  await postTasks(ctx, 'tasks to watch', n - ids.length)
  await settle(ctx)
  return firstIds()
}

/** One many-sockets figure: the probes' latency, and the many sockets' own when they timed any. */
function recordMany(
  ctx: Context,
  shape: ManySocketsShape,
  [set, probe]: [SocketSet, SocketSet],
  probed: LatencySummary,
  all: LatencySummary,
  extra: { fromStatementStart?: LatencyPoints; offsetsMs?: number[]; bytes?: number[] },
) {
  const sockets = set.opened + probe.opened
  ctx.results.events![`${sockets} ${shape}`] = { sockets, shape, ...probed, ...(all.count ? { allSockets: pick(all) } : {}), ...extra }
}

/** Where the cores go while the sockets of `sets` are timed: the server, the worker, the socket load processes. */
function socketsCpu(server: number, sets: SocketSet[], worker?: number) {
  const loads = sets.flatMap((s) => s.children.map((c) => c.pid))
  return measureCpu({ api: () => [server], ...(worker ? { worker: () => [worker] } : {}), load: () => loads })
}

/** Times events on probe sockets (the all-tasks feed, a process of their own) opened after `set`. */
async function probeLatency(ctx: Context, set: SocketSet, shape: ManySocketsShape) {
  const probe = await openSockets(ctx, PROBE_SOCKETS, 1)
  try {
    const cpu = socketsCpu(ctx.api!.pid, [set, probe], ctx.worker!.pid)
    const [all, probed] = await measure(ctx, [set, probe], ctx.opts.eventRateMany, true)
    ctx.results.resources.cpu[`events ${shape}`] = cpu.stop()
    recordMany(ctx, shape, [set, probe], probed!.latency, all!.latency, { fromStatementStart: pick(probed!.fromStatementStart) })
  } finally {
    await probe.close()
  }
}

/** The all-feed run's events as reference (d) copies them: when each of a task's three came, and how long each message was. */
export interface EventShape {
  offsetsMs: [number, number, number]
  /** The median length of the PENDING, PROCESSING and COMPLETED messages, in bytes. */
  bytes: [number, number, number]
}

/**
 * How far apart, at the median, the PROCESSING and COMPLETED events of tasks
 * past `afterId` were pushed after their PENDING one, and how long each
 * status's message was: the events stream's entry ids are the times Redis took
 * them, so the reference publishes as the hubs were given them (the worker may
 * push a claim's events with its completion), not as the statements ran, and
 * its sockets read as many bytes as the system's.
 */
export async function eventShape(redis: Pick<Redis, 'xrevrange'>, eventsKey: string, afterId: number): Promise<EventShape> {
  // The all-feed run's events are the stream's newest: a few tasks a second for one window.
  const entries = (await redis.xrevrange(eventsKey, '+', '-', 'COUNT', 20_000)) as [string, string[]][]
  const pushedAt = new Map<number, Map<string, number>>()
  const lengths = new Map<string, number[]>()
  for (const [id, fields] of entries) {
    const e = fieldsToEvent(fields)
    if (!e || e.taskId <= afterId) continue
    const { status } = JSON.parse(e.json)
    const times = pushedAt.get(e.taskId) ?? new Map<string, number>()
    times.set(status, Number(id.split('-')[0]))
    pushedAt.set(e.taskId, times)
    const of = lengths.get(status) ?? []
    of.push(Buffer.byteLength(e.json))
    lengths.set(status, of)
  }
  const median = (values: number[]) => (values.length ? values.sort((x, y) => x - y)[Math.floor(values.length / 2)]! : 0)
  const after = (status: string) =>
    median([...pushedAt.values()].flatMap((t) => (t.has('PENDING') && t.has(status) ? [t.get(status)! - t.get('PENDING')!] : [])))
  const bytes = (status: string) => median(lengths.get(status) ?? [])
  return { offsetsMs: [0, after('PROCESSING'), after('COMPLETED')], bytes: [bytes('PENDING'), bytes('PROCESSING'), bytes('COMPLETED')] }
}

/**
 * Reference (d) for the all-feed shape: Bun's own publish, from a server that
 * does nothing else, to as many sockets opened the same way, of tasks at the
 * same rate whose three events are as far apart, and as long, as the system's just were.
 * What it takes to write every event to every socket on this machine, before
 * any work of ours.
 */
async function bareBunFeed(ctx: Context, sockets: number, { offsetsMs, bytes }: EventShape) {
  const port = freePort()
  const server = spawnChild('publish-server', ['bun', 'scripts/bench/publish-server.ts'], { PORT: port })
  try {
    await expectReply(server, 'ready', 10_000)
    const wsUrl = `ws://127.0.0.1:${port}/`
    const set = await openSockets(ctx, sockets, ctx.opts.socketProcesses, { wsUrl })
    const probe = await openSockets(ctx, PROBE_SOCKETS, 1, { wsUrl })
    try {
      startCounting([set, probe], true)
      const cpu = socketsCpu(server.pid, [set, probe])
      server.send({ cmd: 'start', tasksPerSecond: ctx.opts.eventRateMany, offsetsMs, bytes } satisfies PublishCommand)
      await expectReply(server, 'started', 10_000)
      await Bun.sleep(ctx.opts.windowMs)
      server.send({ cmd: 'stop' })
      await expectReply(server, 'stopped', 10_000)
      await Bun.sleep(500)
      ctx.results.resources.cpu['events bare Bun'] = cpu.stop()
      const [all, probed] = (await stopCounting([set, probe])).map((replies) => Histogram.from(replies.map((r) => r.latency)).summary())
      recordMany(ctx, 'bare Bun', [set, probe], probed!, all!, { offsetsMs, bytes })
    } finally {
      await Promise.all([set.close(), probe.close()])
    }
  } finally {
    await server.stop()
  }
}

/**
 * Event latency (worker's commit to a socket's receive) at 1, 100 and many
 * sockets under a light load, and fan-out throughput at many sockets with the
 * API's memory per idle socket. Many sockets are timed in two shapes: each
 * watching a task of its own (connected, receiving nothing of this load), and
 * all on the all-tasks feed (every event is a write to each); the feed's
 * sockets are opened once for both that and the fan-out.
 */
export async function runSockets(ctx: Context, want: { events: boolean; fanout: boolean }) {
  ctx.worker ??= await startWorker(ctx.env, ctx.port)
  await settle(ctx)
  const { opts } = ctx
  const many = opts.manySockets
  if (want.events) {
    ctx.results.events = {}
    const ids = await taskIdsToWatch(ctx, many)
    console.log(`events: latency at ${ids.length} sockets each watching its own task + ${PROBE_SOCKETS} on the feed, ${opts.eventRateMany} tasks/s`)
    const watchers = await openSockets(ctx, ids.length, opts.socketProcesses, { taskIds: ids })
    try {
      await probeLatency(ctx, watchers, 'own task')
    } finally {
      await watchers.close()
    }
  }
  // A fresh API process, so the memory per socket is not lost in heap the earlier phases left behind.
  console.log('sockets: restarting the api for a clean memory baseline')
  await ctx.api!.stop()
  ctx.api = await startApi(ctx.env, ctx.port)
  await Bun.sleep(opts.idleMs)
  const before = rssBytes(ctx.api.pid)!
  console.log(`sockets: opening ${many} idle sockets over ${opts.socketProcesses} load processes`)
  const set = await openSockets(ctx, many, opts.socketProcesses)
  let allFeed: EventShape | null = null
  try {
    // Let the sessions settle (feed subscriptions, buffers) before reading memory.
    await Bun.sleep(opts.idleMs * 1.5)
    const after = rssBytes(ctx.api!.pid)!
    if (want.events) {
      console.log(`events: latency at ${set.opened} + ${PROBE_SOCKETS} sockets on the feed, ${opts.eventRateMany} tasks/s`)
      const lastIdBefore = await maxId(ctx)
      await probeLatency(ctx, set, 'all feed')
      allFeed = await eventShape(ctx.env.redis, streamKeys(ctx.env.keyPrefix).shards[0]!.events, lastIdBefore)
    }
    if (want.fanout) {
      // A progress step makes each task 4 events, so the offered messages need few tasks:
      // what is measured is the fan-out, not how fast tasks can be created. More steps
      // would not be more events: a run's progress is stored at most once per 100 ms,
      // and a task of duration 0 keeps only its first report.
      const steps = 2
      const rate = Math.max(1, Math.round(opts.fanoutOfferedMessages / set.opened / (steps + 2)))
      console.log(`fanout: ${set.opened} sockets, ${rate} tasks/s of ${steps + 2} events (${opts.fanoutOfferedMessages} messages/s offered)`)
      const cpu = socketsCpu(ctx.api!.pid, [set], ctx.worker.pid)
      const [m] = await measure(ctx, [set], rate, false, { title: 'bench fan-out', payload: { duration_ms: 0, steps } })
      ctx.results.resources.cpu[`fanout ${set.opened}`] = cpu.stop()
      ctx.results.fanout = {
        sockets: set.opened,
        offeredPerSecond: Math.round(m!.offeredPerSecond),
        deliveredPerSecond: Math.round(m!.deliveredPerSecond),
        closedByServer: m!.closedByServer,
        apiRssBeforeMiB: MiB(before)!,
        apiRssAfterMiB: MiB(after)!,
        bytesPerSocket: round((after - before) / Math.max(1, set.opened), 0),
      }
    }
  } finally {
    await set.close()
  }
  if (allFeed) {
    console.log(
      `events: reference (d), bare Bun publishing to ${many} + ${PROBE_SOCKETS} sockets, ${opts.eventRateMany} tasks/s, events at +${allFeed.offsetsMs.join(' / +')} ms of ${allFeed.bytes.join(' / ')} bytes`,
    )
    await bareBunFeed(ctx, many, allFeed)
  }
  if (want.events) {
    for (const n of [1, 100]) {
      console.log(`events: latency at ${n} socket${n > 1 ? 's' : ''}, ${opts.eventRateFew} tasks/s`)
      const set = await openSockets(ctx, n, 1)
      try {
        const [m] = await measure(ctx, [set], opts.eventRateFew, true)
        ctx.results.events![n] = { sockets: set.opened, ...m!.latency, fromStatementStart: pick(m!.fromStatementStart) }
      } finally {
        await set.close()
      }
    }
  }
}
