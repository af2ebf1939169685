import type { Logger } from '../infra/logger'
import { Periodic } from './periodic'
import type { TaskStatus } from '../domain/tasks/task'
import { RETENTION_LOCK } from '../domain/tasks/task-retention.repository'
import { withSessionLock } from '../infra/session-lock'
import { removeFinishedTasks, type RemovalDeps, type RemovalOptions } from '../domain/tasks/task-retention.service'

/** How long finished tasks of each terminal status are kept, in ms; 0 keeps them. */
export type RetentionPolicy = Record<Extract<TaskStatus, 'COMPLETED' | 'FAILED' | 'CANCELLED'>, number>

export interface RetentionOptions extends RemovalDeps, RemovalOptions {
  logger: Logger
  policy: RetentionPolicy
}

/**
 * Removes finished tasks past their status's retention, with their events.
 * One worker at a time runs a pass (an advisory lock held on the pass's own
 * connection; the others skip theirs), a batch per statement with a pause
 * between batches, so no lock is held for long and the API keeps its share of
 * Postgres. A pass that removed anything says so in one log line.
 */
export class Retention {
  private readonly periodic: Periodic
  private readonly stopping = new AbortController()

  constructor(private readonly o: RetentionOptions) {
    this.periodic = new Periodic({ name: 'retention', logger: o.logger, pass: () => this.runOnce() })
  }

  /** One pass; null when another worker's pass holds the lock. */
  async runOnce(now = Date.now()): Promise<Partial<RetentionPolicy> | null> {
    const statuses = (Object.keys(this.o.policy) as (keyof RetentionPolicy)[]).filter((s) => this.o.policy[s] > 0)
    if (statuses.length === 0) return {}
    return withSessionLock(this.o.db, RETENTION_LOCK, async (conn) => {
      const removed: Partial<RetentionPolicy> = {}
      for (const status of statuses) {
        if (this.stopping.signal.aborted) break
        const n = await removeFinishedTasks(
          this.o,
          { status, finishedBefore: new Date(now - this.o.policy[status]) },
          { ...this.o, conn, signal: this.stopping.signal },
        )
        if (n > 0) removed[status] = n
      }
      if (Object.keys(removed).length > 0) this.o.logger.info('removed finished tasks past their retention', { removed })
      return removed
    })
  }

  start(intervalMs: number): void {
    this.periodic.start(intervalMs)
  }

  async stop(): Promise<void> {
    // A pass under way stops between batches.
    this.stopping.abort()
    await this.periodic.stop()
  }
}
