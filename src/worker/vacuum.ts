import type { Db } from '../infra/db'
import type { Logger } from '../infra/logger'
import { taskTableState, vacuumTaskTables } from '../domain/tasks/task-vacuum.repository'
import { Periodic } from './periodic'

/** A vacuum takes at most this share of the time: on a large table each one reads every index whole. */
const MAX_DUTY = 0.1

/**
 * Vacuums tasks every interval, across all workers. Every claim and
 * completion leaves a dead row version whose entries in the ready and status
 * indexes stay until a vacuum; the oldest ready tasks are the ones claimed,
 * so each claim's scan walks over every dead entry before the first live one
 * and claims slow down as tasks pass. Autovacuum waits for a fifth of the
 * table to be dead and looks once a minute: far too late for a queue. One
 * worker at a time (an advisory lock); the interval is counted from the
 * last vacuum by any of them (pg_stat_user_tables), so more workers do not
 * vacuum more often.
 */
export class TasksVacuum {
  private readonly periodic: Periodic
  private warnedNotOwner = false
  /** This worker's own vacuums are spaced so they take at most MAX_DUTY of its time. */
  private notBefore = 0

  constructor(private readonly o: { db: Db; logger: Logger; intervalMs: number }) {
    this.periodic = new Periodic({ name: 'the tasks vacuum', logger: o.logger, pass: () => this.runOnce() })
  }

  /** One look: whether this worker vacuumed (false if one ran within the interval, or another worker is at it). */
  async runOnce(): Promise<boolean> {
    if (performance.now() < this.notBefore) return false
    const { sinceVacuumMs, owned } = await taskTableState(this.o.db)
    if (!owned) {
      if (!this.warnedNotOwner) this.o.logger.warn('cannot vacuum tasks (not its owner): claims slow down until autovacuum runs')
      this.warnedNotOwner = true
      return false
    }
    if (sinceVacuumMs !== null && sinceVacuumMs < this.o.intervalMs) return false
    const started = performance.now()
    const vacuumed = await this.o.db.connection().execute(vacuumTaskTables)
    this.notBefore = performance.now() + ((performance.now() - started) * (1 - MAX_DUTY)) / MAX_DUTY
    return vacuumed
  }

  start(): void {
    // Looks twice per interval, so the cluster's vacuums are at most half an interval late.
    if (this.o.intervalMs > 0) this.periodic.start(Math.max(100, this.o.intervalMs / 2))
  }

  stop(): Promise<void> {
    return this.periodic.stop()
  }
}
