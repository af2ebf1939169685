/**
 * Socket load: holds `sockets` idle connections to the all-tasks feed and, on
 * command, counts what they receive (fan-out) and how late (event latency).
 *
 * Latency is the moment a socket got an event minus the event's commit time.
 * The event JSON carries `at` only to the millisecond, so each message's
 * cursor (task_events.id) and receive time are kept, and after the window the
 * exact `at` (microseconds, Postgres now() of the worker's statement) is read
 * from task_events. PENDING events are written by the API, not the worker, so
 * they are counted but not timed.
 */
import pg from 'pg'
import { Histogram } from './histogram'
import { wallMs } from './clock'
import { fail, job, onCommand, reply } from './child-runtime'
import { openSocket } from './ws-client'

export interface WsJob {
  wsUrl: string
  databaseUrl: string
  sockets: number
  /** Connections opened at once; more would overflow the server's accept queue. */
  openConcurrency: number
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
// the producer's JSON always has these keys (src/domain/messages.ts).
function onMessage(data: string) {
  if (!recording) return
  messages++
  if (!timing) return
  const at = wallMs()
  if (data.includes('"status":"PENDING"')) return
  const i = data.indexOf('"cursor":')
  if (i < 0) return
  const cursor = parseInt(data.slice(i + 9, i + 30), 10)
  if (cursor > 0) keep(cursor, at)
}

async function openAll() {
  let next = 0
  let failed = 0
  let firstError: string | null = null
  await Promise.all(Array.from({ length: Math.min(j.openConcurrency, j.sockets) }, async () => {
    while (next < j.sockets) {
      next++
      try {
        const ws = await openSocket(j.wsUrl, onMessage)
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
  }))
  return { failed, firstError }
}

async function latencies(): Promise<Histogram> {
  const hist = new Histogram()
  if (samples === 0) return hist
  let lo = Infinity
  let hi = 0
  for (let i = 0; i < samples; i++) {
    lo = Math.min(lo, cursors[i]!)
    hi = Math.max(hi, cursors[i]!)
  }
  const client = new pg.Client({ connectionString: j.databaseUrl })
  await client.connect()
  try {
    const { rows } = await client.query<{ id: string; at_ms: number }>(
      'select id, (extract(epoch from at) * 1000)::float8 as at_ms from task_events where id between $1 and $2',
      [lo, hi],
    )
    const commitAt = new Map(rows.map((r) => [Number(r.id), r.at_ms]))
    for (let i = 0; i < samples; i++) {
      const at = commitAt.get(cursors[i]!)
      if (at !== undefined) hist.record(Math.max(0, received[i]! - at))
    }
  } finally {
    await client.end()
  }
  return hist
}

let windowStart = 0
onCommand(async (m) => {
  if (m.cmd === 'start') {
    messages = 0
    samples = 0
    timing = Boolean(m.latency)
    recording = true
    windowStart = performance.now()
  } else if (m.cmd === 'stop') {
    recording = false
    const windowMs = performance.now() - windowStart
    const hist = timing ? await latencies() : new Histogram()
    reply({ type: 'stopped', messages, windowMs, latency: hist.toJSON(), open: sockets.length - closedByServer, closedByServer, closeCodes })
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
