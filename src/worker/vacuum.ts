import type { Db } from '../infra/db'
import type { Logger } from '../infra/logger'
import { taskTableState, VACUUM_LOCK, vacuumTaskTables } from '../domain/tasks/task-vacuum.repository'
import { withSessionLock } from '../infra/session-lock'
import { Periodic } from './periodic'

/** Vacuums take at most this share of the time: on a large table each one reads every index whole. */
const MAX_DUTY = 0.1

/**
 * Vacuums tasks every interval, across all workers. Every claim and
 * completion leaves a dead row version whose entries in the ready and status
 * indexes stay until a vacuum; the oldest ready tasks are the ones claimed,
 * so each claim's scan walks over every dead entry before the first live one
 * and claims slow down as tasks pass. Autovacuum waits for a fifth of the
 * table to be dead and looks once a minute: far too late for a queue. One
 * worker at a time (an advisory lock), the gap counted from the last vacuum
 * by any of them (pg_stat_user_tables) and checked again under the lock, so
 * more workers do not vacuum more often. The gap grows to nine times the
 * length of the worker's last vacuum, so that vacuums (all of a similar
 * length, on one table) take at most a tenth of the time.
 */
export class TasksVacuum {
  private readonly periodic: Periodic
  private warnedNotAllowed = false
  /** How long this worker's last vacuum took: the next waits nine times that, whoever runs it. */
  private lastMs = 0

  constructor(private readonly o: { db: Db; logger: Logger; intervalMs: number }) {
    this.periodic = new Periodic({ name: 'the tasks vacuum', logger: o.logger, pass: () => this.runOnce() })
  }

  /** The least time between the last vacuum (anyone's) and this worker's next (read by the tests). */
  get gapMs(): number {
    return Math.max(this.o.intervalMs, (this.lastMs * (1 - MAX_DUTY)) / MAX_DUTY)
  }

  /** One look: whether this worker vacuumed (false if one ran within the gap, or another worker is at it). */
  async runOnce(): Promise<boolean> {
    const { mayVacuum, sinceVacuumMs } = await taskTableState(this.o.db)
    if (!mayVacuum) {
      if (!this.warnedNotAllowed) this.o.logger.warn('cannot vacuum tasks (not its owner, nor MAINTAIN on it): claims slow down until autovacuum runs')
      this.warnedNotAllowed = true
      return false
    }
    const due = (since: number | null) => since === null || since >= this.gapMs
    if (!due(sinceVacuumMs)) return false
    const vacuumed = await withSessionLock(this.o.db, VACUUM_LOCK, async (conn) => {
      // Another worker may have finished one between the look above and the lock.
      if (!due((await taskTableState(conn)).sinceVacuumMs)) return false
      const started = performance.now()
      await vacuumTaskTables(conn)
      const tookMs = performance.now() - started
      // skip_locked: a table another session holds a conflicting lock on is skipped with a warning only, its last vacuum unchanged.
      const since = (await taskTableState(conn)).sinceVacuumMs
      if (since === null || since > performance.now() - started) return false
      this.lastMs = tookMs
      return true
    })
    return vacuumed === true
  }

  start(): void {
    // Looks twice per interval, so the cluster's vacuums are at most half an interval late.
    if (this.o.intervalMs > 0) this.periodic.start(Math.max(100, this.o.intervalMs / 2))
  }

  stop(): Promise<void> {
    return this.periodic.stop()
  }
}
