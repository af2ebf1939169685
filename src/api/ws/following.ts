import type { Db } from '../../infra/db'
import { coerceError, type Logger } from '../../infra/logger'
import { messageToStreamed, type StreamedEvent, type TaskEventMessage } from '../../domain/task-events/task-event'
import { createBatcher } from '../../infra/batcher'
import { latestEventId, listNewestSeqsBetween, listEventsAfter, listEventsInGaps } from '../../domain/task-events/task-event.repository'
import { findTaskSeqs } from '../../domain/tasks/task.repository'
import { EventSequencer } from './event-sequencer'

type Gap = { taskId: number; afterSeq: number; beforeSeq: number }

export interface FollowingOptions {
  db: Db
  logger: Logger
  /** How often the tail calls tick(). */
  resyncMs: number
  /** Tasks with sockets here, with the newest seq those sockets were brought up to. */
  watched: ReadonlyMap<number, { seq: number }>
  /** Whether the tail still holds this state; once it does not, nothing this state does is published. */
  isCurrent(): boolean
  publish(e: StreamedEvent): void
}

/**
 * What the hub knows while it follows the stream, from one wake to the next
 * idle: its position (the newest task_events id published), each task's seq
 * (the sequencer), where it stood lately, and the reads from Postgres that
 * fill what the stream lost. Waking starts over with a new one, so work the
 * old one still has in flight (a gap fill, a periodic check) publishes
 * nothing to the sockets that woke the hub: they read their own history.
 * Nor does it read Postgres: once replaced, its checks and gap fills return
 * at once, so a state no one follows costs the database nothing.
 */
export class Following {
  /** The newest task_events id published; null until read from Postgres. */
  private cursor: number | null = null
  /** Where this wake began: the earliest point a look back may need (a shard down since the wake). */
  private startCursor: number | null = null
  private readonly recentCursors: { at: number; cursor: number }[] = []
  private readonly sequencer: EventSequencer
  private checking = false

  /**
   * Every read of missing events (the sequencer's gaps, the periodic checks)
   * goes through here: those that come together (a hub behind a flood of
   * events) share one query, one batch at a time. A task may be in a batch
   * twice, so each gets only its own range. A batch that comes due after
   * this state was replaced reads nothing: no one here is owed its events.
   */
  private readonly gaps = createBatcher(
    async (batch: Gap[]): Promise<TaskEventMessage[][]> => {
      if (!this.o.isCurrent()) return batch.map(() => [])
      const found = Map.groupBy(await listEventsInGaps(this.o.db, batch), (m) => m.task_id)
      return batch.map((g) => (found.get(g.taskId) ?? []).filter((m) => m.seq > g.afterSeq && m.seq < g.beforeSeq))
    },
    { maxBatch: 1000 },
  )

  constructor(private readonly o: FollowingOptions) {
    this.sequencer = new EventSequencer({
      publish: (e) => this.publish(e),
      fetchMissing: (taskId, afterSeq, beforeSeq) => this.gaps.add({ taskId, afterSeq, beforeSeq }),
      onError: (e) => o.logger.warn('could not fill an event gap from postgres', { error: coerceError(e).message }),
    })
  }

  /** The one staleness check: everything this state publishes, whenever its work ends, passes here. */
  private publish(e: StreamedEvent): void {
    if (!this.o.isCurrent()) return
    if (this.cursor !== null && e.cursor > this.cursor) this.cursor = e.cursor
    this.o.publish(e)
  }

  offer(e: StreamedEvent): void {
    this.sequencer.offer(e)
  }

  lastSeq(taskId: number): number | undefined {
    return this.sequencer.lastSeq(taskId)
  }

  /** The newest event when this wake began: what came before is owed to no socket here. */
  async learnStart(): Promise<number> {
    if (this.cursor !== null) return this.cursor
    const start = await latestEventId(this.o.db)
    this.cursor = start
    this.startCursor = start
    this.sequencer.startFrom(start)
    return start
  }

  /**
   * After an outage that began at `since`: events committed just before it,
   * whose XADD failed, have ids below the newest one published, so the
   * catch-up starts from where this state stood a few seconds before.
   */
  catchUpAfterOutage(since: number): Promise<void> {
    return this.catchUp(Infinity, this.cursorBefore(since - 5000))
  }

  /** Notes where it stands, and runs the periodic checks unless the last ones are still running. */
  tick(): void {
    if (this.cursor !== null) this.recentCursors.push({ at: Date.now(), cursor: this.cursor })
    // About a minute of history is plenty to look back a few seconds before an outage.
    if (this.recentCursors.length > Math.ceil(60_000 / this.o.resyncMs)) this.recentCursors.shift()
    if (this.checking || !this.o.isCurrent()) return
    this.checking = true
    this.resyncWatched()
      .then(() => this.findUnstreamed())
      .then(() => this.catchUp(1))
      .catch(() => {})
      .finally(() => (this.checking = false))
  }

  /** Where this state stood at time t; before its first tick, where the wake began (other shards may have moved the cursor since). */
  private cursorBefore(t: number): number | null {
    return this.recentCursors.findLast((r) => r.at <= t)?.cursor ?? this.startCursor ?? this.cursor
  }

  /**
   * Publishes events Postgres has past the newest one published here: those
   * written while Redis was away, or whose XADD never happened. Events still
   * in flight on the stream are published now and dropped as repeats later.
   */
  private async catchUp(maxPages: number, from: number | null = this.cursor): Promise<void> {
    if (!this.o.isCurrent()) return
    const start = await this.learnStart()
    let cursor = from ?? start
    // A state the tail has let go of stops paging: nothing it read would be published.
    for (let i = 0; i < maxPages && this.o.isCurrent(); i++) {
      const page = await listEventsAfter(this.o.db, cursor, 1000)
      for (const m of page) this.sequencer.offer(messageToStreamed(m))
      cursor = page.at(-1)?.cursor ?? cursor
      this.cursor = Math.max(this.cursor ?? start, cursor)
      if (page.length < 1000) return
    }
  }

  /** Publishes, through the sequencer, what Postgres has of each task past the seq given. */
  private fetchAfter(behind: Map<number, number>, owed: (m: TaskEventMessage) => boolean = () => true) {
    return Promise.all(
      [...behind].map(async ([taskId, afterSeq]) => {
        for (const m of await this.gaps.add({ taskId, afterSeq, beforeSeq: Infinity })) if (owed(m)) this.sequencer.offer(messageToStreamed(m))
      }),
    )
  }

  /**
   * An event committed but never streamed (its producer died between commit
   * and XADD) is found here: events from one to three periods ago (old enough
   * not to be merely in flight) that the hub has not published are taken from
   * Postgres. Only each task's newest seq is read, so this stays cheap under load.
   */
  private async findUnstreamed(): Promise<void> {
    if (!this.o.isCurrent()) return
    const now = Date.now()
    const from = this.cursorBefore(now - 3 * this.o.resyncMs)
    const upto = this.cursorBefore(now - this.o.resyncMs)
    if (from === null || upto === null || upto <= from) return
    const behind = new Map<number, number>()
    const unseen = new Set<number>()
    for (const { task_id, seq } of await listNewestSeqsBetween(this.o.db, from, upto, 100_000)) {
      const published = this.sequencer.lastSeq(task_id)
      if (published === undefined) unseen.add(task_id)
      if (seq > (published ?? 0)) behind.set(task_id, published ?? 0)
    }
    // Of a task this hub has not seen, only the window's events are missing:
    // the older ones predate the hub's start (or an earlier look back), and
    // are owed to no socket here.
    await this.fetchAfter(behind, (m) => !unseen.has(m.task_id) || m.cursor > from)
  }

  /** Compares watched tasks with Postgres, to catch an event the stream lost. */
  private async resyncWatched(): Promise<void> {
    const ids = [...this.o.watched.keys()]
    if (ids.length === 0 || !this.o.isCurrent()) return
    const behind = new Map<number, number>()
    for (const { id, seq } of await findTaskSeqs(this.o.db, ids)) {
      const published = this.sequencer.lastSeq(id) ?? this.o.watched.get(id)?.seq ?? seq
      if (seq > published) behind.set(id, published)
    }
    await this.fetchAfter(behind)
  }
}
