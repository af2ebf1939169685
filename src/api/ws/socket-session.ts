import type { ServerWebSocket } from 'bun'
import type { Db } from '../../infra/db'
import * as repo from '../../domain/tasks/task.repository'
import { taskRowToTask } from '../../domain/tasks/task'
import type { StreamedEvent } from '../../domain/task-events/task-event'
import { latestEventId } from '../../domain/task-events/task-event.repository'
import type { Principal } from '../../domain/tokens/token'
import { allTasksTopic, ownerTopic, taskTopic, type EventHub } from './event-hub'
import { REPLAY_PAGE, type ReplayedCursors, replayFeed, replayTask } from './replay'
import type { ReplaySlots } from './replay-slots'

export type SocketData = ({ feed: 'task'; taskId: number; afterSeq?: number } | { feed: 'all'; after?: number }) & {
  principal: Principal
  /** Releases what the session holds in the hub; set once the session starts. */
  stop?: () => void
  /** Leaves the hub's audience (see EventHub.join); set when the socket opens. */
  leave?: () => void
  /** Wakes a replay waiting for the socket's buffer to drain (see writable). */
  drained?: () => void
}
export type TaskSocket = ServerWebSocket<SocketData>

/** Close codes a client can act on (4000-4999 are ours to define). */
export const closeCodes = {
  goingAway: 1001,
  unsupportedData: 1003,
  policyViolation: 1008,
  tooBig: 1009,
  internal: 1011,
  tokenRevoked: 4401,
  tooSlow: 4008,
  taskGone: 4404,
} as const

/** How long an all-tasks socket filters live events against its replay before joining the topic. */
const FEED_SETTLE_MS = 1000
/** A replay waits while its socket holds more unsent bytes than this (unless told otherwise). */
export const REPLAY_HIGH_WATER = 64 * 1024
/** Live events a replay holds at most; past it they are read from Postgres instead. */
const MAX_HELD = REPLAY_PAGE * 5
/** Replays one owner may run at once on this instance. */
export const REPLAYS_PER_OWNER = 4

export interface SessionDeps {
  db: Db
  hub: EventHub
  /** Unsent bytes above which a replay waits for the client to read (default 64 KiB). */
  replayHighWater?: number
  /** Told of a socket a send left with unsent data, so it can be judged too slow at once. */
  onBackpressure?: (ws: TaskSocket) => void
  /** Live events a replay holds at most before reading them from Postgres instead (default MAX_HELD). */
  maxHeld?: number
  /** Bounds the replays running at once per owner (none when absent, as in unit tests). */
  replaySlots?: ReplaySlots
}

/**
 * Waits for a replay slot of the socket's owner; null if the socket closed
 * meanwhile (its slot is given back at once). Without a replay there is
 * nothing to wait for.
 */
async function replaySlot(ws: TaskSocket, deps: SessionDeps, replays: boolean): Promise<(() => void) | null> {
  if (!replays || !deps.replaySlots) return () => {}
  const release = await deps.replaySlots.acquire(String(ws.data.principal.ownerId ?? 'anonymous'))
  if (ws.readyState === WebSocket.OPEN) return release
  release()
  return null
}

const highWaterOf = (deps: SessionDeps) => deps.replayHighWater ?? REPLAY_HIGH_WATER

/** The topic a socket joins once caught up. An admin follows every task; any other token only its own. */
export function topicOf(data: SocketData): string {
  if (data.feed === 'task') return taskTopic(data.taskId)
  const { principal } = data
  return principal.admin || principal.ownerId === null ? allTasksTopic : ownerTopic(principal.ownerId)
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
  const release = await replaySlot(ws, deps, afterSeq !== undefined)
  if (!release) return
  try {
    await followTask(ws, deps, taskId, afterSeq)
  } finally {
    release()
  }
}

/**
 * A session's topic, listened to before the session reads anything from
 * Postgres: live events are held until the session says where they go.
 */
class EarlyListener {
  /** Held live events; a replay drops, in place, those its pages covered. */
  readonly held: StreamedEvent[] = []
  readonly stop: () => void
  private onLive: (e: StreamedEvent) => void = (e) => this.held.push(e)

  constructor(hub: EventHub, topic: string) {
    this.stop = hub.listen(topic, (e) => this.onLive(e))
  }

  /** Hands the held events to fn. */
  flush(fn: (e: StreamedEvent) => void): void {
    for (const e of this.held) fn(e)
  }

  /** Hands each later live event to fn. */
  onEach(fn: (e: StreamedEvent) => void): void {
    this.onLive = fn
  }
}

/**
 * Listens to the topic, then waits until the hub follows the stream from a
 * point no later than that: what the session reads next and what the hub
 * publishes meet without a gap.
 */
async function listenEarly(ws: TaskSocket, deps: SessionDeps, topic: string): Promise<EarlyListener> {
  const live = new EarlyListener(deps.hub, topic)
  ws.data.stop = live.stop
  await deps.hub.following()
  return live
}

async function followTask(ws: TaskSocket, deps: SessionDeps, taskId: number, afterSeq?: number): Promise<void> {
  const topic = taskTopic(taskId)
  const live = await listenEarly(ws, deps, topic)
  const stopListening = live.stop
  const replayed =
    afterSeq === undefined
      ? await sendSnapshot(ws, deps.db, taskId)
      : await replayTask(ws, deps.db, highWaterOf(deps), taskId, afterSeq, { events: live.held, max: deps.maxHeld ?? MAX_HELD })
  if (replayed === null || ws.readyState !== WebSocket.OPEN) return stopListening()

  let last = replayed
  const unwatch = deps.hub.watch(taskId, last)
  ws.data.stop = () => {
    stopListening()
    unwatch()
  }
  const forward = (e: StreamedEvent) => {
    if (e.seq <= last) return
    if (ws.send(e.json) === -1) deps.onBackpressure?.(ws)
    last = e.seq
  }
  const joinTopicIfCaughtUp = () => {
    if ((deps.hub.lastSeq(taskId) ?? -1) < last) return false
    ws.subscribe(topic)
    stopListening()
    return true
  }
  live.flush(forward)
  if (joinTopicIfCaughtUp()) return
  live.onEach((e) => {
    forward(e)
    joinTopicIfCaughtUp()
  })
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

/**
 * The all-tasks feed: without a cursor, a hello carrying the current one; with
 * ?after=, every event since it from Postgres, page by page. Live events that
 * arrive meanwhile, or are still in flight behind what Postgres showed, are
 * filtered against the replay for a moment before the socket joins the topic.
 */
export async function startFeedSession(ws: TaskSocket, deps: SessionDeps, after?: number): Promise<void> {
  const release = await replaySlot(ws, deps, after !== undefined)
  if (!release) return
  try {
    await followFeed(ws, deps, after)
  } finally {
    release()
  }
}

async function followFeed(ws: TaskSocket, deps: SessionDeps, after?: number): Promise<void> {
  const { principal } = ws.data
  const topic = topicOf(ws.data)
  const owner = topic === allTasksTopic ? undefined : principal.ownerId
  const live = await listenEarly(ws, deps, topic)
  const stopListening = live.stop
  let sent: ReplayedCursors | null = null
  if (after === undefined) ws.send(JSON.stringify({ kind: 'hello', cursor: await latestEventId(deps.db) }))
  else sent = await replayFeed(ws, deps.db, { highWater: highWaterOf(deps), after, owner, held: { events: live.held, max: deps.maxHeld ?? MAX_HELD } })
  if (ws.readyState !== WebSocket.OPEN) return stopListening()
  const forward = (e: StreamedEvent) => {
    if (sent?.has(e.cursor)) return
    if (ws.send(e.json) === -1) deps.onBackpressure?.(ws)
  }
  live.flush(forward)
  live.onEach(forward)
  const settle = setTimeout(
    () => {
      if (ws.readyState !== WebSocket.OPEN) return
      ws.subscribe(topic)
      stopListening()
    },
    sent?.size ? FEED_SETTLE_MS : 0,
  )
  ws.data.stop = () => {
    clearTimeout(settle)
    stopListening()
  }
}
