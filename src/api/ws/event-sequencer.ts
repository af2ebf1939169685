import { messageToStreamed, type StreamedEvent, type TaskEventMessage } from '../../domain/task-events/task-event'
import { createGenerationalMap } from '../../infra/generational-map'

interface TaskState {
  last: number
  /** The cursor of the event published as `last`. */
  cursor: number
  /** Events that arrived while the gap before them is being filled from Postgres. */
  queue: StreamedEvent[] | null
}

export interface SequencerOptions {
  /** Publishes one event to sockets; called in seq order per task. */
  publish(e: StreamedEvent): void
  /** Reads a task's events with afterSeq < seq < beforeSeq (Infinity: all) from Postgres. */
  fetchMissing(taskId: number, afterSeq: number, beforeSeq: number): Promise<TaskEventMessage[]>
  onError(e: unknown): void
  maxTasks?: number
  /** First pause before fetching a gap again after a failure; doubles each time. */
  retryBaseMs?: number
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
export function createEventSequencer(o: SequencerOptions) {
  const maxTasks = o.maxTasks ?? 100_000
  const retryBaseMs = o.retryBaseMs ?? 200
  /** Events at or below it are not owed to anyone here; null until the hub knows where it started. */
  let floor: number | null = null
  /** The tasks seen lately (at least the last maxTasks); forgetting one raises the floor to its last cursor. */
  const tasks = createGenerationalMap<number, TaskState>(maxTasks, (forgotten) => {
    for (const state of forgotten) floor = Math.max(floor ?? 0, state.cursor)
  })

  function publish(state: TaskState, e: StreamedEvent) {
    state.last = e.seq
    state.cursor = e.cursor
    o.publish(e)
  }

  function offer(e: StreamedEvent): void {
    const state = tasks.get(e.taskId)
    if (!state) {
      const fresh: TaskState = { last: 0, cursor: 0, queue: null }
      tasks.set(e.taskId, fresh)
      if (e.seq === 1 || floor === null) publish(fresh, e)
      else {
        fresh.queue = [e]
        void fill(e.taskId, fresh, e.seq, floor)
      }
      return
    }
    if (state.queue) {
      state.queue.push(e)
      return
    }
    if (e.seq <= state.last) return
    if (e.seq === state.last + 1) {
      publish(state, e)
      return
    }
    state.queue = [e]
    void fill(e.taskId, state, e.seq)
  }

  async function fill(taskId: number, state: TaskState, beforeSeq: number, above = -Infinity) {
    // A busy or restarting Postgres gets a few tries (about 6 s in all) before the gap is given up.
    for (let attempt = 0, delay = retryBaseMs; ; attempt++, delay *= 2) {
      try {
        for (const m of await o.fetchMissing(taskId, state.last, beforeSeq)) {
          if (m.seq <= state.last || m.cursor <= above) continue
          publish(state, messageToStreamed(m))
        }
        break
      } catch (e) {
        o.onError(e)
        if (attempt >= 5) break
        await Bun.sleep(delay)
      }
    }
    const queued = (state.queue ?? []).sort((a, b) => a.seq - b.seq)
    state.queue = null
    // What is still missing (Postgres away, or not owed) is skipped rather than holding the task back forever.
    if (queued[0] && queued[0].seq > state.last + 1) state.last = queued[0].seq - 1
    for (const q of queued) offer(q)
  }

  return {
    offer,
    lastSeq: (taskId: number): number | undefined => tasks.peek(taskId)?.last,
    /** Where this instance started following the events: nothing at or below it is owed. */
    startFrom(cursor: number) {
      floor = Math.max(floor ?? 0, cursor)
    },
  }
}

export type EventSequencer = ReturnType<typeof createEventSequencer>
