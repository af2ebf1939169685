import type { Db } from '../infra/db'
import { claimLimited, claimNext, queuesWithReadyTasks, type Claimer, type QueueLimit } from '../domain/tasks/task-claim.repository'
import type { TaskChange } from '../domain/task-events/task-event'
import type { Outbox } from './outbox'
import type { TaskRunner } from './task-runner'

export interface IntakeOptions {
  db: Db
  workerId: string
  leaseMs: number
  runner: TaskRunner
  outbox: Outbox
  /** The task types this worker has handlers for. */
  types: readonly string[]
  /** The queues this worker serves; null: all of them. */
  queues: readonly string[] | null
  /** Queues with a concurrency or start-rate limit across all workers. */
  limits: readonly QueueLimit[]
}

/**
 * Fills free slots: claims the next ready tasks from Postgres and starts each
 * on the runner. Limited queues are claimed first, each under its own lock
 * and within its limit, so a busy unlimited queue cannot starve them; the
 * rest of the slots go to the other queues.
 */
export class Intake {
  private readonly worker: Claimer
  private readonly limits: readonly QueueLimit[]

  constructor(private readonly o: IntakeOptions) {
    this.worker = { id: o.workerId, leaseMs: o.leaseMs, types: o.types }
    this.limits = o.limits.filter((l) => o.queues === null || o.queues.includes(l.queue))
  }

  /**
   * Claims up to `free` tasks and starts them: how many it claimed, and when a
   * rate-limited queue with ready tasks will have a token again.
   */
  async fill(free: number): Promise<{ claimed: number; lookAgainMs?: number }> {
    const { db, outbox } = this.o
    const claimed: TaskChange[] = []
    let lookAgainMs: number | undefined
    if (this.limits.length) {
      const withWork = await queuesWithReadyTasks(
        db,
        this.limits.map((l) => l.queue),
      )
      for (const limit of this.limits) {
        if (claimed.length >= free || !withWork.has(limit.queue)) continue
        const got = await outbox.persist('claim', () => claimLimited(db, free - claimed.length, this.worker, limit))
        claimed.push(...got)
        if (limit.perSecond !== undefined) lookAgainMs = Math.min(lookAgainMs ?? Infinity, Math.ceil(1000 / limit.perSecond))
      }
    }
    if (claimed.length < free) {
      const scope = { queues: this.o.queues, skip: this.o.limits.map((l) => l.queue) }
      claimed.push(...(await outbox.persist('claim', () => claimNext(db, free - claimed.length, this.worker, scope))))
    }
    // Not awaited: the handlers need not wait for Redis, and the outbox keeps
    // PROCESSING ahead of whatever the run streams next.
    void outbox.publish(claimed)
    for (const task of claimed) this.o.runner.start(task)
    return { claimed: claimed.length, lookAgainMs }
  }
}
