import type { Db } from '../infra/db'
import type { Logger } from '../infra/logger'
import { Periodic } from './periodic'
import { publishChanges, readyIds, type StreamDeps } from '../domain/streams'
import { wallMs } from '../infra/clock'
import * as runs from '../domain/tasks/task-runs.repository'

const BATCH = 1000

/**
 * Moves tasks along that no request or run moves: one worker at a time (a
 * transaction-scoped advisory lock; the others skip) recovers tasks whose
 * worker died (their lease expired), fails tasks whose dependencies will
 * never complete, and makes waiting tasks ready once their time has come and
 * their dependencies are COMPLETED (delays, retries backing off), waking
 * workers with a job for each. Jobs are pushed only after the transaction has
 * committed, so a worker woken by one finds the task ready.
 */
export interface SweeperOptions extends StreamDeps {
  db: Db
  logger: Logger
}

export class Sweeper {
  private readonly periodic: Periodic

  constructor(private readonly o: SweeperOptions) {
    this.periodic = new Periodic({ name: 'the sweeper', logger: o.logger, pass: () => this.sweepOnce() })
  }

  /** One pass, unless another worker's sweeper is at it. */
  async sweepOnce(): Promise<{ recovered: number; failed: number; enqueued: number }> {
    const { recovered, failed, due } = await this.inTransaction()
    const changes = [...recovered, ...failed]
    // Their statements ran inside the transaction: committed only now.
    const committedAt = wallMs()
    for (const c of changes) c.stored_at = committedAt
    if (recovered.length) this.o.logger.warn('recovered tasks whose worker stopped', { tasks: recovered.map((r) => r.id) })
    if (failed.length) this.o.logger.info('failed tasks whose dependencies will never complete', { tasks: failed.map((r) => r.id) })
    // A lost push delays nothing for long: workers also look for ready tasks on their own.
    if (changes.length || due.length) await publishChanges(this.o, [...due, ...readyIds(recovered)], changes)
    return { recovered: recovered.length, failed: failed.length, enqueued: due.length }
  }

  start(intervalMs: number): void {
    this.periodic.start(intervalMs)
  }

  stop(): Promise<void> {
    return this.periodic.stop()
  }

  /** Under the sweep lock: what to recover, what to fail, and what to make ready, all committed together. */
  private async inTransaction() {
    type Changes = Awaited<ReturnType<typeof runs.recoverExpiredLeases>>
    const out = { recovered: [] as Changes, failed: [] as Changes, due: [] as number[] }
    await this.o.db.transaction().execute(async (trx) => {
      if (!(await runs.trySweepLock(trx))) return
      out.recovered = await runs.recoverExpiredLeases(trx)
      out.failed = await runs.failBlockedDependents(trx)
      out.due = await runs.lockDueWaiting(trx, BATCH)
      await runs.markReady(trx, out.due)
    })
    return out
  }
}
