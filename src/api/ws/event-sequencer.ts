import { messageToStreamed, type StreamedEvent, type TaskEventMessage } from '../../domain/task-events/task-event'
import { createGenerationalMap } from '../../infra/generational-map'

interface TaskState {
  last: number
  /** The cursor of the event published as `last`. */
  cursor: number
  /** Events that arrived after a gap: while the gap may still close from the stream, then while it is filled from Postgres. */
  queue: StreamedEvent[] | null
  /** Set while the gap may still close from the stream: when it runs out, the gap is filled from Postgres. */
  grace: { timer: ReturnType<typeof setTimeout>; above: number } | null
}

export interface SequencerOptions {
  /** Publishes one event to sockets; called in seq order per task. */
  publish(e: StreamedEvent): void
  /** Reads a task's events with afterSeq < seq < beforeSeq (Infinity: all) from Postgres; it only reads, and never offers events back. */
  fetchMissing(taskId: number, afterSeq: number, beforeSeq: number): Promise<TaskEventMessage[]>
  onError(e: unknown): void
  maxTasks?: number
  /** First pause before fetching a gap again after a failure; doubles each time. */
  retryBaseMs?: number
  /**
   * How long a gap may close by itself before it is filled from Postgres. With
   * JOB_SHARDS > 1 a task's first event can reach its stream after the
   * worker's claim of it (the API's push to that shard was still on its way
   * when another shard's job woke the worker): waiting a moment saves a read.
   */
  reorderGraceMs?: number
}

/**
 * Makes what this API instance publishes per task gapless, duplicate-free and
 * in seq order, even when the events stream lost or repeated an entry (a
 * producer died between its commit and its XADD, Redis restarted, two
 * producers raced): duplicates and stale events are dropped, and a gap is
 * filled from Postgres before anything after it is published.
 *
 * A task first seen past seq 1 may have had its earlier events committed
 * while the stream could not take them (a producer still reconnecting after
 * Redis came back): those above the floor are fetched first. The floor is the
 * cursor this instance started from, raised to the last cursor of any task it
 * forgets, so what was published before is never published again.
 */
export class EventSequencer {
  /** Events at or below it are not owed to anyone here; null until the owner knows where it started. */
  private floor: number | null = null
  /** The tasks seen lately (at least the last maxTasks); forgetting one raises the floor to its last cursor. */
  private readonly tasks: ReturnType<typeof createGenerationalMap<number, TaskState>>
  private readonly retryBaseMs: number
  private readonly reorderGraceMs: number

  constructor(private readonly o: SequencerOptions) {
    this.retryBaseMs = o.retryBaseMs ?? 200
    this.reorderGraceMs = o.reorderGraceMs ?? 50
    this.tasks = createGenerationalMap<number, TaskState>(o.maxTasks ?? 100_000, (forgotten) => {
      for (const state of forgotten) this.floor = Math.max(this.floor ?? 0, state.cursor)
    })
  }

  offer(e: StreamedEvent): void {
    const state = this.tasks.get(e.taskId)
    if (!state) this.first(e)
    else if (state.queue) {
      state.queue.push(e)
      if (state.grace && e.seq === state.last + 1) this.closeGap(state)
    } else if (e.seq === state.last + 1) this.publish(state, e)
    // Past the next seq is a gap, filled first; at or below the last is a duplicate or stale, and dropped.
    else if (e.seq > state.last) this.awaitGap(e.taskId, state, e)
  }

  lastSeq(taskId: number): number | undefined {
    return this.tasks.peek(taskId)?.last
  }

  /** Where this instance started following the events: nothing at or below it is owed. */
  startFrom(cursor: number): void {
    this.floor = Math.max(this.floor ?? 0, cursor)
  }

  /** A task not seen lately: what came before its first event here is fetched, above the floor. */
  private first(e: StreamedEvent): void {
    const fresh: TaskState = { last: 0, cursor: 0, queue: null, grace: null }
    this.tasks.set(e.taskId, fresh)
    if (e.seq === 1 || this.floor === null) this.publish(fresh, e)
    else this.awaitGap(e.taskId, fresh, e, this.floor)
  }

  /** Holds e and what follows it until the gap before it closes from the stream or, after the grace, from Postgres. */
  private awaitGap(taskId: number, state: TaskState, e: StreamedEvent, above = -Infinity): void {
    state.queue = [e]
    if (this.reorderGraceMs <= 0) return void this.fill(taskId, state, e.seq, above)
    const timer = setTimeout(() => {
      state.grace = null
      const next = Math.min(...state.queue!.map((q) => q.seq))
      void this.fill(taskId, state, next, above)
    }, this.reorderGraceMs)
    state.grace = { timer, above }
  }

  /** The missing event came: publishes what is now in order; a gap left further on waits out the rest of the grace. */
  private closeGap(state: TaskState): void {
    const { above } = state.grace!
    const queued = state.queue!.sort((a, b) => a.seq - b.seq)
    while (queued[0] && queued[0].seq <= state.last + 1) {
      const q = queued.shift()!
      if (q.seq <= state.last) continue
      // Not owed here (it precedes where this instance started): passed over, as the fill would.
      if (q.cursor <= above) state.last = q.seq
      else this.publish(state, q)
    }
    if (queued.length > 0) return
    clearTimeout(state.grace!.timer)
    state.grace = null
    state.queue = null
  }

  private publish(state: TaskState, e: StreamedEvent): void {
    state.last = e.seq
    state.cursor = e.cursor
    this.o.publish(e)
  }

  private async fill(taskId: number, state: TaskState, beforeSeq: number, above = -Infinity): Promise<void> {
    // A busy or restarting Postgres gets a few tries (about 6 s in all) before the gap is given up.
    for (let attempt = 0, delay = this.retryBaseMs; ; attempt++, delay *= 2) {
      try {
        for (const m of await this.o.fetchMissing(taskId, state.last, beforeSeq)) {
          if (m.seq <= state.last || m.cursor <= above) continue
          this.publish(state, messageToStreamed(m))
        }
        break
      } catch (e) {
        this.o.onError(e)
        if (attempt >= 5) break
        await Bun.sleep(delay)
      }
    }
    const queued = (state.queue ?? []).sort((a, b) => a.seq - b.seq)
    state.queue = null
    // What is still missing (Postgres away, or not owed) is skipped rather than holding the task back forever.
    if (queued[0] && queued[0].seq > state.last + 1) state.last = queued[0].seq - 1
    for (const q of queued) this.offer(q)
  }
}
