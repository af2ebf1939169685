import type { Db } from '../infra/db'
import type { Metrics } from '../infra/metrics'
import { claimLimited, claimNext, queuesWithReadyTasks, type Claimer, type ClaimScope, type QueueLimit } from '../domain/tasks/task-claim.repository'
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
  metrics?: Metrics
}

/**
 * Fills free slots: claims the next ready tasks from Postgres and starts each
 * on the runner. Limited queues are claimed each under its own lock and
 * within its limit; fills alternate between claiming them first and claiming
 * the other queues first, so neither kind can take every slot from the other.
 */
export class Intake {
  private readonly worker: Claimer
  private readonly limits: readonly QueueLimit[]
  /** The other queues: the ones served, less the limited ones (claimed each on its own). */
  private readonly others: ClaimScope
  private limitedFirst = false

  constructor(private readonly o: IntakeOptions) {
    this.worker = { id: o.workerId, leaseMs: o.leaseMs, types: o.types }
    this.limits = o.limits.filter((l) => o.queues === null || o.queues.includes(l.queue))
    this.others = { queues: o.queues, skip: o.limits.map((l) => l.queue) }
  }

  /** Whether this worker claims from a queue with a concurrency or rate limit across workers. */
  get limited(): boolean {
    return this.limits.length > 0
  }

  /**
   * Claims up to `free` tasks and starts them: how many it claimed, and when
   * a rate-limited queue that ran out of tokens will have one again.
   */
  async fill(free: number): Promise<{ claimed: number; lookAgainMs?: number }> {
    const claimed: TaskChange[] = []
    let lookAgainMs: number | undefined
    this.limitedFirst = !this.limitedFirst
    const limited = async () => {
      lookAgainMs = await this.claimLimited(free - claimed.length, claimed)
    }
    const others = async () => {
      if (claimed.length >= free) return
      claimed.push(...(await this.o.outbox.persist('claim', () => claimNext(this.o.db, free - claimed.length, this.worker, this.others))))
    }
    for (const step of this.limitedFirst ? [limited, others] : [others, limited]) await step()
    this.o.metrics?.countClaim(claimed.length)
    // The handlers need not wait for Redis, and the outbox keeps PROCESSING
    // ahead of whatever the run streams next.
    this.o.outbox.hold(claimed)
    for (const task of claimed) this.o.runner.start(task)
    return { claimed: claimed.length, lookAgainMs }
  }

  /** Claims from each limited queue with work, into `claimed`; when one ran out of tokens, how soon it has another. */
  private async claimLimited(free: number, claimed: TaskChange[]): Promise<number | undefined> {
    if (this.limits.length === 0 || free <= 0) return undefined
    const { db, outbox } = this.o
    const withWork = await queuesWithReadyTasks(
      db,
      this.limits.map((l) => l.queue),
      this.worker.types,
    )
    let lookAgainMs: number | undefined
    for (const limit of this.limits) {
      const room = free - claimed.length
      if (room <= 0 || !withWork.has(limit.queue)) continue
      const got = await outbox.persist('claim', () => claimLimited(db, room, this.worker, limit))
      claimed.push(...got.claimed)
      if (got.outOfTokens && limit.perSecond) lookAgainMs = Math.min(lookAgainMs ?? Infinity, Math.ceil(1000 / limit.perSecond))
    }
    return lookAgainMs
  }
}
