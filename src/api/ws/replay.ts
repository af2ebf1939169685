import type { ServerWebSocket } from 'bun'
import type { Db } from '../../infra/db'
import * as repo from '../../domain/task-events/task-event.repository'
import type { StreamedEvent } from '../../domain/task-events/task-event'

/** What a replay needs of its socket: room to write, and a way to be woken when the client has read. */
type ReplaySocket = ServerWebSocket<{ drained?: () => void }>

/** Events a replay reads per query: a long history is read, and held, a page at a time. */
export const REPLAY_PAGE = 200
/** A drain Bun failed to report must not stall a replay for good: look again after this long. */
const DRAIN_RECHECK_MS = 1000

/**
 * Resolves true once the socket's unsent data is at or below highWater, false
 * if it closed meanwhile. A replay calls it before each message and each
 * query, so a client that reads slowly slows its replay instead of making the
 * server hold its history.
 */
export async function writable(ws: ReplaySocket, highWater: number): Promise<boolean> {
  while (ws.readyState === WebSocket.OPEN && ws.getBufferedAmount() > highWater) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, DRAIN_RECHECK_MS)
      function done() {
        clearTimeout(timer)
        if (ws.data.drained === done) ws.data.drained = undefined
        resolve()
      }
      ws.data.drained = done
    })
  }
  return ws.readyState === WebSocket.OPEN
}

/** Live events that came during a replay, held to be sent after it unless the replay covered them. */
export interface Held {
  events: StreamedEvent[]
  /** Past this many, held events are let go and read from Postgres instead, by one more page. */
  max: number
}

/** Lets go of the held events if there are too many; true if it did, so the replay must read once more. */
function overflowed(held: Held): boolean {
  if (held.events.length <= held.max) return false
  held.events.length = 0
  return true
}

/**
 * Sends the task's events after afterSeq, a page per query, each message only
 * once the client has read enough of the ones before; held live events the
 * pages covered are dropped. Returns the last seq sent, or null if the socket
 * closed first.
 */
export async function replayTask(ws: ReplaySocket, db: Db, highWater: number, taskId: number, afterSeq: number, held: Held): Promise<number | null> {
  for (let last = afterSeq; ; ) {
    if (!(await writable(ws, highWater))) return null
    const page = await repo.listTaskEvents(db, taskId, last, REPLAY_PAGE)
    let again = page.length === REPLAY_PAGE
    for (const e of page) {
      if (overflowed(held)) again = true
      if (!(await writable(ws, highWater))) return null
      ws.send(JSON.stringify(e))
      last = e.seq
    }
    keepUnsent(held.events, (e) => e.seq > last)
    if (overflowed(held)) again = true
    if (!again) return last
  }
}

/**
 * The cursors an all-tasks replay has sent, for filtering the live events that
 * overlap it. Event ids are taken before commit, so a live event may carry a
 * lower cursor than one already replayed and still be new: the recent pages
 * are remembered exactly, and only cursors older than them are taken as sent
 * wholesale, so the memory a replay holds does not grow with its length.
 */
export class ReplayedCursors {
  private current = new Set<number>()
  private previous = new Set<number>()
  /** Every cursor at or below this counts as sent. */
  private floor: number

  constructor(
    after: number,
    private readonly generation = REPLAY_PAGE * 2,
  ) {
    this.floor = after
  }

  add(cursor: number) {
    this.current.add(cursor)
    if (this.current.size < this.generation) return
    for (const c of this.previous) if (c > this.floor) this.floor = c
    this.previous = this.current
    this.current = new Set()
  }

  has(cursor: number): boolean {
    return cursor <= this.floor || this.current.has(cursor) || this.previous.has(cursor)
  }

  get size() {
    return this.current.size + this.previous.size
  }
}

/**
 * Sends every event after `after` (of one owner's tasks when owner is set)
 * from Postgres, page by page at the client's pace. Held live events are
 * trimmed of what each page sent; past their bound they are let go whole,
 * and the following pages read them from Postgres.
 */
export async function replayFeed(
  ws: ReplaySocket,
  db: Db,
  o: { highWater: number; after: number; owner?: number | null; held: Held },
): Promise<ReplayedCursors> {
  const sent = new ReplayedCursors(o.after)
  for (let cursor = o.after, again = true; again && (await writable(ws, o.highWater)); ) {
    const page = await repo.listEventsAfter(db, cursor, REPLAY_PAGE, o.owner)
    again = page.length === REPLAY_PAGE
    for (const e of page) {
      if (overflowed(o.held)) again = true
      if (!(await writable(ws, o.highWater))) return sent
      ws.send(JSON.stringify(e))
      sent.add(e.cursor)
      cursor = e.cursor
    }
    keepUnsent(o.held.events, (e) => !sent.has(e.cursor))
    if (overflowed(o.held)) again = true
  }
  return sent
}

/** Keeps, in place and in order, the events that pass keep. */
export function keepUnsent(events: StreamedEvent[], keep: (e: StreamedEvent) => boolean) {
  let kept = 0
  for (const e of events) if (keep(e)) events[kept++] = e
  events.length = kept
}
