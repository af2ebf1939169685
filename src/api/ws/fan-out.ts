import type { Server } from 'bun'
import type { StreamedEvent } from '../../domain/task-events/task-event'
import { wallMs } from '../../infra/clock'

export const allTasksTopic = 'tasks'
export const taskTopic = (id: number) => `task:${id}`
/** One owner's share of the all-tasks feed (non-admin tokens subscribe here). */
export const ownerTopic = (ownerId: number) => `tasks:owner:${ownerId}`

export type Listener = (e: StreamedEvent) => void

/**
 * Sends each ordered event to its topics: the task's, the all-tasks feed and
 * its owner's feed, through Bun's server to sockets and to in-process listeners.
 */
export class FanOut {
  private server: Server<unknown> | null = null
  private backpressured: ((topic: string) => void) | null = null
  private readonly listeners = new Map<string, Set<Listener>>()

  constructor(private readonly onPublish?: (lateMs: number | null) => void) {}

  attach(server: Server<unknown>): void {
    this.server = server
  }

  /** Whether anything in this process listens (a listener keeps the hub following, as a socket does). */
  hasListeners(): boolean {
    return this.listeners.size > 0
  }

  /** Calls fn with every event published to topic until the returned function is called. */
  listen(topic: string, fn: Listener): () => void {
    let set = this.listeners.get(topic)
    if (!set) this.listeners.set(topic, (set = new Set()))
    set.add(fn)
    return () => {
      set.delete(fn)
      if (set.size === 0) this.listeners.delete(topic)
    }
  }

  /** Calls fn, at once, with each topic a publish left with a socket that has unsent data. */
  onBackpressure(fn: (topic: string) => void): void {
    this.backpressured = fn
  }

  publish(e: StreamedEvent): void {
    const topics = [taskTopic(e.taskId), allTasksTopic]
    if (e.ownerId !== null) topics.push(ownerTopic(e.ownerId))
    const server = this.server
    // Most events go to no socket here (nobody watches a task being created);
    // those are never decoded or encoded again.
    for (const topic of topics) {
      // -1: a socket of the topic now holds unsent data, which must be judged before Bun's own limit drops it.
      if (server && server.subscriberCount(topic) > 0 && server.publish(topic, e.json) === -1) this.backpressured?.(topic)
    }
    this.onPublish?.(e.storedAt === null ? null : wallMs() - e.storedAt)
    for (const topic of topics) {
      const set = this.listeners.get(topic)
      if (set) for (const l of set) l(e)
    }
  }
}
