import type { Db } from '../infra/db'
import type { Logger } from '../infra/logger'
import { foldCounts } from '../domain/stats/stats.repository'
import { Periodic } from './periodic'

/** Outcomes per minute are kept a little over the hour the stats show. */
const KEEP_OUTCOMES = '2 hours'

/**
 * Folds the task count deltas every statement appends into the running totals
 * (db/migrations/000010_operator_view.sql), so GET /api/stats/ sums a few
 * hundred rows however many tasks there are. One worker at a time.
 */
export class CountFolder {
  private readonly periodic: Periodic

  constructor(private readonly o: { db: Db; logger: Logger }) {
    this.periodic = new Periodic({ name: 'the count folder', logger: o.logger, pass: () => this.foldOnce() })
  }

  foldOnce(): Promise<number> {
    return foldCounts(this.o.db, KEEP_OUTCOMES)
  }

  start(intervalMs: number): void {
    this.periodic.start(intervalMs)
  }

  stop(): Promise<void> {
    return this.periodic.stop()
  }
}
