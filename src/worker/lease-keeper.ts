import type { Db } from '../infra/db'
import { coerceError, type Logger } from '../infra/logger'
import { extendLeases } from '../domain/tasks/task-runs.repository'
import { AbortReason, type Run } from './run'

export interface LeaseKeeperOptions {
  db: Db
  workerId: string
  leaseMs: number
  logger: Logger
}

/**
 * While a handler runs, its lease in Postgres is renewed every third of the lease, so a slow task is never taken for a
 * dead one. A lease that can no longer be extended means the task was
 * cancelled (or recovered elsewhere): its handler is aborted. A handler doing
 * long CPU work renews its own through ctx.heartbeat(), since the timer cannot
 * fire while it holds the event loop.
 */
export class LeaseKeeper {
  private timer: ReturnType<typeof setInterval> | undefined
  private busy = false
  readonly renewEveryMs: number

  constructor(private readonly o: LeaseKeeperOptions) {
    this.renewEveryMs = Math.max(50, Math.floor(o.leaseMs / 3))
  }

  /** Renews these runs' leases now, and aborts those whose lease is gone. */
  async renew(runs: Run[]): Promise<void> {
    if (runs.length === 0) return
    const at = performance.now()
    try {
      const held = await extendLeases(
        this.o.db,
        runs.map((r) => r.key.id),
        this.o.workerId,
        this.o.leaseMs,
      )
      for (const r of runs) {
        if (held.has(r.key.id)) r.renewedAt = at
        else r.controller.abort(new AbortReason('cancelled'))
      }
    } catch (e) {
      this.o.logger.warn('could not extend leases', { error: coerceError(e).message })
    }
  }

  /** Renews the runs `running` lists, on a timer, until stop(). */
  start(running: () => Run[]): void {
    this.timer ??= setInterval(() => {
      if (this.busy) return
      this.busy = true
      this.renew(running()).finally(() => (this.busy = false))
    }, this.renewEveryMs)
  }

  stop(): void {
    clearInterval(this.timer)
  }
}
