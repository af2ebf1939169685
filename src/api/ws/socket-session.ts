import type { ServerWebSocket } from 'bun'
import type { Db } from '../../infra/db'
import type { Logger } from '../../infra/logger'
import * as repo from '../../domain/tasks/task.repository'
import { taskRowToTask } from '../../domain/tasks/task'
import type { StreamedEvent } from '../../domain/messages'
import { allTasksTopic, taskTopic, type EventHub } from './event-hub'

export type SocketData = ({ feed: 'task'; taskId: number; afterSeq?: number } | { feed: 'all'; after?: number }) & {
  /** Releases what the session holds in the hub; set once the session starts. */
  stop?: () => void
}
export type TaskSocket = ServerWebSocket<SocketData>

/** Close codes a client can act on (4000-4999 are ours to define). */
export const closeCodes = { goingAway: 1001, internal: 1011, tooSlow: 4008, taskGone: 4404 } as const

const REPLAY_PAGE = 1000
/** How long an all-tasks socket filters live events against its replay before joining the topic. */
const FEED_SETTLE_MS = 1000

interface SessionDeps {
  db: Db
  hub: EventHub
}

/**
 * Brings a task socket up to date, then hands it to the hub with no gap and no
 * duplicate: listen first, read the snapshot or history from Postgres, send
 * what the hub published meanwhile that history did not cover, and subscribe
 * to the topic once the hub has published at least what the socket has. Until
 * then (the hub may still be behind Postgres) events are forwarded one by one,
 * dropping any the socket already has.
 */
export async function startTaskSession(ws: TaskSocket, deps: SessionDeps, taskId: number, afterSeq?: number): Promise<void> {
  const topic = taskTopic(taskId)
  const early: StreamedEvent[] = []
  let onLive: (e: StreamedEvent) => void = (e) => early.push(e)
  const stopListening = deps.hub.listen(topic, (e) => onLive(e))
  ws.data.stop = stopListening
  const replayed = afterSeq === undefined ? await sendSnapshot(ws, deps.db, taskId) : await sendHistory(ws, deps.db, taskId, afterSeq)
  if (replayed === null || ws.readyState !== WebSocket.OPEN) return stopListening()

  let last = replayed
  const unwatch = deps.hub.watch(taskId, last)
  ws.data.stop = () => {
    stopListening()
    unwatch()
  }
  const forward = (e: StreamedEvent) => {
    if (e.seq <= last) return
    ws.send(e.json)
    last = e.seq
  }
  const joinTopicIfCaughtUp = () => {
    if ((deps.hub.lastSeq(taskId) ?? -1) < last) return false
    ws.subscribe(topic)
    stopListening()
    return true
  }
  for (const e of early) forward(e)
  if (joinTopicIfCaughtUp()) return
  onLive = (e) => {
    forward(e)
    joinTopicIfCaughtUp()
  }
}

async function sendSnapshot(ws: TaskSocket, db: Db, taskId: number): Promise<number | null> {
  const row = await repo.findTaskById(db, taskId)
  if (!row) {
    ws.close(closeCodes.taskGone, `task ${taskId} not found`)
    return null
  }
  const task = taskRowToTask(row)
  ws.send(JSON.stringify({ kind: 'snapshot', task_id: task.id, status: task.status, seq: task.seq, progress: task.progress, at: task.updated_at, task }))
  return task.seq
}

async function sendHistory(ws: TaskSocket, db: Db, taskId: number, afterSeq: number): Promise<number> {
  const events = await repo.listTaskEvents(db, taskId, afterSeq)
  for (const e of events) ws.send(JSON.stringify(e))
  return events.at(-1)?.seq ?? afterSeq
}

/**
 * The all-tasks feed: without a cursor, a hello carrying the current one; with
 * ?after=, every event since it from Postgres, page by page. Live events that
 * arrive meanwhile, or are still in flight behind what Postgres showed, are
 * filtered against the replay for a moment before the socket joins the topic.
 */
export async function startFeedSession(ws: TaskSocket, deps: SessionDeps, after?: number): Promise<void> {
  const early: StreamedEvent[] = []
  let onLive: (e: StreamedEvent) => void = (e) => early.push(e)
  const stopListening = deps.hub.listen(allTasksTopic, (e) => onLive(e))
  ws.data.stop = stopListening
  const seen = new Set<number>()
  if (after === undefined) {
    ws.send(JSON.stringify({ kind: 'hello', cursor: await repo.latestEventId(deps.db) }))
  } else {
    for (let cursor = after; ; ) {
      const page = await repo.listEventsAfter(deps.db, cursor, REPLAY_PAGE)
      for (const e of page) {
        ws.send(JSON.stringify(e))
        seen.add(e.cursor)
      }
      if (page.length < REPLAY_PAGE) break
      cursor = page.at(-1)!.cursor
    }
  }
  if (ws.readyState !== WebSocket.OPEN) return stopListening()
  const forward = (e: StreamedEvent) => {
    if (seen.has(e.cursor) || (after !== undefined && e.cursor > 0 && e.cursor <= after)) return
    ws.send(e.json)
  }
  for (const e of early) forward(e)
  onLive = forward
  const settle = setTimeout(() => {
    if (ws.readyState !== WebSocket.OPEN) return
    ws.subscribe(allTasksTopic)
    stopListening()
  }, seen.size ? FEED_SETTLE_MS : 0)
  ws.data.stop = () => {
    clearTimeout(settle)
    stopListening()
  }
}

/**
 * Bun's websocket handlers. Sessions start on open; every socket is tracked
 * for shutdown and for the slow-client check: a client that stops reading is
 * closed (4008) once its send buffer passes maxBufferedBytes, so it can never
 * make this process's memory grow without bound. It loses nothing: it
 * reconnects with after_seq.
 */
export function createSocketHandlers(deps: SessionDeps & { logger: Logger; maxBufferedBytes: number }) {
  const sockets = new Set<TaskSocket>()
  const slowCheck = setInterval(() => {
    for (const ws of sockets) {
      if (ws.getBufferedAmount() > deps.maxBufferedBytes) {
        ws.close(closeCodes.tooSlow, 'client too slow to read its messages; reconnect with after_seq')
      }
    }
  }, 500)
  return {
    sockets,
    handlers: {
      data: {} as SocketData,
      // The hard bound behind the 4008 check, should a burst outrun it.
      backpressureLimit: deps.maxBufferedBytes * 4,
      closeOnBackpressureLimit: true,
      async open(ws: TaskSocket) {
        sockets.add(ws)
        try {
          if (ws.data.feed === 'task') await startTaskSession(ws, deps, ws.data.taskId, ws.data.afterSeq)
          else await startFeedSession(ws, deps, ws.data.after)
        } catch (e) {
          deps.logger.warn('socket session failed to start', { error: (e as Error).message, feed: ws.data.feed })
          ws.close(closeCodes.internal, 'could not load task history; reconnect')
        }
      },
      message(ws: TaskSocket, message: string | Buffer) {
        // An application-level ping for clients (browsers) that cannot send protocol pings.
        if (message === 'ping') ws.send('{"kind":"pong"}')
      },
      close(ws: TaskSocket) {
        sockets.delete(ws)
        ws.data.stop?.()
      },
    },
    closeAll(code: number, reason: string) {
      clearInterval(slowCheck)
      for (const ws of sockets) ws.close(code, reason)
    },
  }
}
