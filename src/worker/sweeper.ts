import type { Db } from '../infra/db'
import type { Logger } from '../infra/logger'
import { Periodic } from './periodic'
import { reconcileRedisEpoch } from '../domain/redis-epoch'
import { publishChanges, pushToStreams, type StreamDeps } from '../domain/streams'
import { wallMs } from '../infra/clock'
import * as runs from '../domain/tasks/task-runs.repository'
import { setEnqueuedAt } from '../domain/tasks/task.repository'

const BATCH = 1000

/**
 * Makes Postgres, not Redis, the reason every task gets run. One worker at a
 * time (a transaction-scoped advisory lock; the others skip) recovers tasks
 * whose worker died and enqueues every PENDING task that is due but not known
 * to be on the jobs stream: retries whose backoff elapsed, tasks accepted
 * while Redis was down, and, after Redis lost its data, all of them.
 *
 * Jobs are XADDed only after the transaction that made their tasks due has
 * committed: a worker reading the job earlier would see the old row, whose
 * status does not match its claim, and drop the job. A crash between commit
 * and XADD leaves a task marked as queued that is not; the stale check finds
 * it once the queue is empty.
 */
export interface SweeperOptions extends StreamDeps {
  db: Db
  logger: Logger
  /** How long a task may be marked as queued while the queue is empty before it counts as lost. */
  staleAfterMs?: number
}

export class Sweeper {
  private readonly periodic: Periodic

  constructor(private readonly o: SweeperOptions) {
    this.periodic = new Periodic({ name: 'the sweeper', logger: o.logger, pass: () => this.sweepOnce() })
  }

  /** One pass: recovers dead workers' tasks and enqueues due ones, unless another worker's sweeper is at it. */
  async sweepOnce(): Promise<{ recovered: number; enqueued: number }> {
    const { recovered, due } = await this.inTransaction()
    if (recovered.length) {
      // Their statements ran inside the transaction: committed only now.
      const committedAt = wallMs()
      for (const r of recovered) r.stored_at = committedAt
      this.o.logger.warn('recovered tasks whose worker stopped', { tasks: recovered.map((r) => r.id) })
      await publishChanges(this.o, [], recovered)
    }
    if (due.length && !(await pushToStreams(this.o, due, []))) {
      await setEnqueuedAt(this.o.db, due, null)
      throw new Error('redis unavailable')
    }
    return { recovered: recovered.length, enqueued: due.length }
  }

  start(intervalMs: number): void {
    this.periodic.start(intervalMs)
  }

  stop(): Promise<void> {
    return this.periodic.stop()
  }

  /** Under the sweep lock: what to recover and what to enqueue, marked as queued when the transaction commits. */
  private async inTransaction() {
    const recovered: Awaited<ReturnType<typeof runs.recoverExpiredLeases>> = []
    const due: number[] = []
    const { o } = this
    await o.db.transaction().execute(async (trx) => {
      if (!(await runs.trySweepLock(trx))) return
      await reconcileRedisEpoch(trx, o.redis, o.keys, o.logger)
      if (await this.queueIsEmpty()) {
        const lost = await runs.forgetStaleEnqueued(trx, o.staleAfterMs ?? 10_000)
        if (lost > 0) o.logger.warn('pending tasks marked as queued were not on the jobs stream; enqueueing them again', { tasks: lost })
      }
      recovered.push(...(await runs.recoverExpiredLeases(trx)))
      due.push(...(await runs.lockDueUnqueued(trx, BATCH)))
      await runs.markEnqueued(trx, due)
    })
    return { recovered, due }
  }

  /**
   * Acknowledged jobs are deleted, so an empty stream means nothing waiting
   * and nothing in flight: a PENDING task marked as queued long ago was lost.
   */
  private async queueIsEmpty(): Promise<boolean> {
    return (await this.o.redis.xlen(this.o.keys.jobs)) === 0
  }
}
