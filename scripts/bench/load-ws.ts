/**
 * Socket load: holds `sockets` idle connections to the all-tasks feed and, on
 * command, counts what they receive (fan-out) and how late (event latency).
 *
 * Latency is the moment a socket got an event minus the moment the worker saw
 * its statement commit, which the events stream carries beside each event.
 * Each message's cursor (task_events.id) and receive time are kept, and after
 * the window the commit times are read back from the stream. The same
 * messages are also timed from the statement's start (task_events.at,
 * Postgres now()), which adds the statement and its fsync. PENDING events are
 * written by the API, not the worker, so they are counted but not timed.
 */
import pg from 'pg'
import Redis from 'ioredis'
import { fieldsToEvent } from '../../src/domain/task-events/task-event'
import { Histogram } from './histogram'
import { wallMs } from '../../src/infra/clock'
import { fail, job, onCommand, reply } from './child-runtime'
import { openSocket } from './ws-client'

export interface WsJob {
  wsUrl: string
  databaseUrl: string
  redisUrl: string
  /** The events stream, where each event's commit time is read back. */
  eventsKey: string
  sockets: number
  /** When given, socket i watches task taskIds[i] (wsUrl + id) instead of the feed at wsUrl. */
  taskIds?: number[]
  /** Connections opened at once; more would overflow the server's accept queue. */
  openConcurrency: number
  /** The API token, sent as the subprotocol pair; none for reference (d), which selects no subprotocol. */
  token?: string
}

const j = job<WsJob>()
const sockets: WebSocket[] = []
let recording = false
let timing = false
let messages = 0
let closedByServer = 0
const closeCodes: Record<string, number> = {}
let cursors = new Float64Array(1 << 16)
let received = new Float64Array(1 << 16)
let samples = 0
let sentLatency = new Histogram()

function keep(cursor: number, at: number) {
  if (samples === cursors.length) {
    const grow = (a: Float64Array) => {
      const b = new Float64Array(a.length * 2)
      b.set(a)
      return b
    }
    cursors = grow(cursors)
    received = grow(received)
  }
  cursors[samples] = cursor
  received[samples++] = at
}

// Cheaper than JSON.parse at hundreds of thousands of messages per second:
// the producer's JSON always has these keys (src/domain/task-events/task-event.ts).
function onMessage(data: string) {
  if (!recording) return
  messages++
  if (!timing) return
  const at = wallMs()
  if (data.includes('"status":"PENDING"')) return
  // Reference (d)'s messages carry when they were due instead of a cursor.
  const due = data.indexOf('"sent":')
  if (due >= 0) return void sentLatency.record(Math.max(0, at - parseFloat(data.slice(due + 7, due + 30))))
  const i = data.indexOf('"cursor":')
  if (i < 0) return
  const cursor = parseInt(data.slice(i + 9, i + 30), 10)
  if (cursor > 0) keep(cursor, at)
}

async function openAll() {
  let next = 0
  let failed = 0
  let firstError: string | null = null
  await Promise.all(
    Array.from({ length: Math.min(j.openConcurrency, j.sockets) }, async () => {
      while (next < j.sockets) {
        const url = j.taskIds ? `${j.wsUrl}${j.taskIds[next]}` : j.wsUrl
        next++
        try {
          const ws = await openSocket(url, onMessage, { token: j.token })
          ws.onclose = (ev) => {
            closedByServer++
            closeCodes[ev.code] = (closeCodes[ev.code] ?? 0) + 1
          }
          sockets.push(ws)
        } catch (e) {
          failed++
          firstError ??= (e as Error).message
        }
      }
    }),
  )
  return { failed, firstError }
}

/** Commit times (producer's wall clock) of the events with cursors in [lo, hi], newest first off the events stream. */
async function commitTimes(lo: number, hi: number): Promise<Map<number, number>> {
  const redis = new Redis(j.redisUrl)
  const found = new Map<number, number>()
  try {
    for (let end = '+'; ; ) {
      const page = (await redis.xrevrange(j.eventsKey, end, '-', 'COUNT', 1000)) as [string, string[]][]
      let newest = 0
      for (const [, fields] of page) {
        const e = fieldsToEvent(fields)
        if (!e) continue
        newest = Math.max(newest, e.cursor)
        if (e.storedAt !== null && e.cursor >= lo && e.cursor <= hi) found.set(e.cursor, e.storedAt)
      }
      // Entries are roughly in cursor order; a whole page older than the window ends it.
      if (page.length < 1000 || newest < lo) break
      end = `(${page.at(-1)![0]}`
    }
  } finally {
    redis.disconnect()
  }
  return found
}

/** Statement start times (Postgres now(), microseconds) of the events with cursors in [lo, hi]. */
async function statementStarts(lo: number, hi: number): Promise<Map<number, number>> {
  const client = new pg.Client({ connectionString: j.databaseUrl })
  await client.connect()
  try {
    const { rows } = await client.query<{ id: string; at_ms: number }>(
      'select id, (extract(epoch from at) * 1000)::float8 as at_ms from task_events where id between $1 and $2',
      [lo, hi],
    )
    return new Map(rows.map((r) => [Number(r.id), r.at_ms]))
  } finally {
    await client.end()
  }
}

async function latencies(): Promise<{ fromCommit: Histogram; fromStatementStart: Histogram }> {
  const fromCommit = new Histogram()
  const fromStatementStart = new Histogram()
  if (samples === 0) return { fromCommit, fromStatementStart }
  let lo = Infinity
  let hi = 0
  for (let i = 0; i < samples; i++) {
    lo = Math.min(lo, cursors[i]!)
    hi = Math.max(hi, cursors[i]!)
  }
  const [committed, started] = await Promise.all([commitTimes(lo, hi), statementStarts(lo, hi)])
  for (let i = 0; i < samples; i++) {
    const at = committed.get(cursors[i]!)
    if (at !== undefined) fromCommit.record(Math.max(0, received[i]! - at))
    const start = started.get(cursors[i]!)
    if (start !== undefined) fromStatementStart.record(Math.max(0, received[i]! - start))
  }
  return { fromCommit, fromStatementStart }
}

let windowStart = 0
onCommand(async (m) => {
  if (m.cmd === 'start') {
    messages = 0
    samples = 0
    sentLatency = new Histogram()
    timing = Boolean(m.latency)
    recording = true
    windowStart = performance.now()
  } else if (m.cmd === 'stop') {
    recording = false
    const windowMs = performance.now() - windowStart
    const timed = timing ? await latencies() : { fromCommit: new Histogram(), fromStatementStart: new Histogram() }
    reply({
      type: 'stopped',
      messages,
      windowMs,
      latency: (sentLatency.count ? sentLatency : timed.fromCommit).toJSON(),
      latencyFromStatementStart: timed.fromStatementStart.toJSON(),
      open: sockets.length - closedByServer,
      closedByServer,
      closeCodes,
    })
  } else if (m.cmd === 'close') {
    for (const ws of sockets) {
      ws.onclose = null
      ws.close()
    }
    setTimeout(() => process.exit(0), 200)
  }
})

const t0 = performance.now()
openAll()
  .then(({ failed, firstError }) => reply({ type: 'ready', opened: sockets.length, failed, firstError, ms: performance.now() - t0 }))
  .catch(fail)
