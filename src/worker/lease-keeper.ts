import type { Db } from '../infra/db'
import { coerceError, type Logger } from '../infra/logger'
import { extendLeases } from '../domain/tasks/task-runs.repository'
import type { JobConsumer } from './job-consumer'
import { AbortReason } from './run'
import type { TaskRunner } from './task-runner'

/**
 * While a handler runs, its lease in Postgres and its job's idle time in Redis
 * are renewed every third of the lease, so a slow task is never taken for a
 * dead one. A lease that can no longer be extended means the task was
 * cancelled (or recovered elsewhere): its handler is aborted.
 */
export function startLeaseKeeper(o: { db: Db; runner: TaskRunner; consumer: JobConsumer; workerId: string; leaseMs: number; logger: Logger }) {
  const tick = async () => {
    const runs = [...o.runner.running.values()]
    if (runs.length === 0) return
    try {
      const held = await extendLeases(
        o.db,
        runs.map((r) => r.key.id),
        o.workerId,
        o.leaseMs,
      )
      for (const r of runs) if (!held.has(r.key.id)) o.runner.abort(r.key.id, new AbortReason('cancelled'))
    } catch (e) {
      o.logger.warn('could not extend leases', { error: coerceError(e).message })
    }
    await o.consumer.touch(runs.flatMap((r) => r.streamIds)).catch(() => {})
  }
  let busy = false
  const timer = setInterval(
    () => {
      if (busy) return
      busy = true
      tick().finally(() => (busy = false))
    },
    Math.max(50, Math.floor(o.leaseMs / 3)),
  )
  return { stop: () => clearInterval(timer) }
}
