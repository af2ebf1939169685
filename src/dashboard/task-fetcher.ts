/// <reference lib="dom" />
import type { TaskEventMessage } from './types'

export interface TaskFetcherOptions {
  /** Requests in flight at most, so a burst of feed changes cannot flood the API. */
  maxParallel: number
  /** Fetches one task and places it; failures are the caller's to swallow. */
  load(id: number): Promise<void>
  /** The changes that arrived while the task was being fetched, handed back once it was (newer ones still apply). */
  release(id: number, held: TaskEventMessage[]): void
}

/**
 * Fetches the tasks the feed mentions that the page does not hold yet, a few
 * at a time, and holds each one's changes until its answer is in.
 */
export function createTaskFetcher(o: TaskFetcherOptions) {
  const held = new Map<number, TaskEventMessage[]>()
  const queue: number[] = []
  let running = 0

  function pump() {
    // Offline, a request can only fail: queued ones go out when the browser is back online.
    if (!navigator.onLine) return
    while (running < o.maxParallel && queue.length) {
      const id = queue.shift()!
      running++
      o.load(id).finally(() => {
        running--
        const waiting = held.get(id) ?? []
        held.delete(id)
        o.release(id, waiting)
        pump()
      })
    }
  }
  addEventListener('online', pump)

  return {
    fetch(id: number) {
      if (held.has(id)) return
      held.set(id, [])
      queue.push(id)
      pump()
    },
    /** The list a change for this task should wait in, if the task is being fetched. */
    holding: (id: number): TaskEventMessage[] | undefined => held.get(id),
  }
}
