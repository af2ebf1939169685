import type { ServerWebSocket } from 'bun'
import type { Db } from '../../infra/db'
import type { Logger } from '../../infra/logger'
import * as repo from '../../domain/tasks/task.repository'
import { taskRowToTask } from '../../domain/tasks/task'
import type { TaskEventMessage } from '../../domain/messages'
import { allTasksTopic, taskTopic, type EventHub } from './event-hub'

export type SocketData = { feed: 'task'; taskId: number; afterSeq?: number } | { feed: 'all'; after?: number }
export type TaskSocket = ServerWebSocket<SocketData>

const REPLAY_PAGE = 1000

/** Close codes a client can act on (4000-4999 are ours to define). */
export const closeCodes = { goingAway: 1001, internal: 1011, taskGone: 4404 } as const

/**
 * Brings a new socket up to date, then subscribes it, with no gap and no
 * duplicate: listen to the hub first, read history from Postgres, send it,
 * send whatever the hub delivered meanwhile that history did not cover, and
 * subscribe, all after the last await so no event can slip in between.
 */
export async function startSession(ws: TaskSocket, deps: { db: Db; hub: EventHub }): Promise<void> {
  const data = ws.data
  const topic = data.feed === 'task' ? taskTopic(data.taskId) : allTasksTopic
  const live: string[] = []
  const stopListening = deps.hub.listen(topic, (json) => live.push(json))
  try {
    const isNew = data.feed === 'task' ? await replayTask(ws, deps.db, data.taskId, data.afterSeq) : await replayAll(ws, deps.db, data.after)
    if (ws.readyState !== WebSocket.OPEN || !isNew) return
    for (const json of live) {
      if (isNew(JSON.parse(json) as TaskEventMessage)) ws.send(json)
    }
    ws.subscribe(topic)
  } finally {
    stopListening()
  }
}

type IsNew = ((e: TaskEventMessage) => boolean) | null

async function replayTask(ws: TaskSocket, db: Db, taskId: number, afterSeq?: number): Promise<IsNew> {
  let last: number
  if (afterSeq === undefined) {
    const row = await repo.findTaskById(db, taskId)
    if (!row) {
      ws.close(closeCodes.taskGone, `task ${taskId} not found`)
      return null
    }
    const task = taskRowToTask(row)
    ws.send(JSON.stringify({ kind: 'snapshot', task_id: task.id, status: task.status, seq: task.seq, progress: task.progress, at: task.updated_at, task }))
    last = row.seq
  } else {
    const events = await repo.listTaskEvents(db, taskId, afterSeq)
    for (const e of events) ws.send(JSON.stringify(e))
    last = events.at(-1)?.seq ?? afterSeq
  }
  return (e) => {
    if (e.seq <= last) return false
    last = e.seq
    return true
  }
}

async function replayAll(ws: TaskSocket, db: Db, after?: number): Promise<IsNew> {
  if (after === undefined) {
    ws.send(JSON.stringify({ kind: 'hello', cursor: await repo.latestEventId(db) }))
    return () => true
  }
  const replayed = new Set<number>()
  let cursor = after
  for (;;) {
    const page = await repo.listEventsAfter(db, cursor, REPLAY_PAGE)
    for (const e of page) {
      ws.send(JSON.stringify(e))
      replayed.add(e.cursor)
    }
    if (page.length < REPLAY_PAGE) break
    cursor = page.at(-1)!.cursor
  }
  return (e) => !(e.cursor > 0 && (e.cursor <= after || replayed.has(e.cursor)))
}

/** Bun's websocket handlers: sessions start on open; every socket is tracked for shutdown. */
export function createSocketHandlers(deps: { db: Db; hub: EventHub; logger: Logger }) {
  const sockets = new Set<TaskSocket>()
  return {
    sockets,
    handlers: {
      data: {} as SocketData,
      async open(ws: TaskSocket) {
        sockets.add(ws)
        try {
          await startSession(ws, deps)
        } catch (e) {
          deps.logger.warn('socket session failed to start', { error: (e as Error).message, ...ws.data })
          ws.close(closeCodes.internal, 'could not load task history; reconnect')
        }
      },
      message(ws: TaskSocket, message: string | Buffer) {
        // An application-level ping for clients (browsers) that cannot send protocol pings.
        if (message === 'ping') ws.send('{"kind":"pong"}')
      },
      close(ws: TaskSocket) {
        sockets.delete(ws)
      },
    },
    closeAll(code: number, reason: string) {
      for (const ws of sockets) ws.close(code, reason)
    },
  }
}
