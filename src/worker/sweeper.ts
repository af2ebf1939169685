import { sql } from 'kysely'
import type { Db } from '../infra/db'
import { coerceError, type Logger } from '../infra/logger'
import { reconcileRedisEpoch } from '../domain/redis-epoch'
import { publishChanges, pushToStreams, type StreamDeps } from '../domain/streams'
import * as runs from '../domain/tasks/task-runs.repository'

// Any constant works; every worker must use the same one.
const SWEEP_LOCK = 72_616_284
const BATCH = 1000

/**
 * Makes Postgres, not Redis, the reason every task gets run. One worker at a
 * time (a transaction-scoped advisory lock; the others skip) recovers tasks
 * whose worker died and enqueues every PENDING task that is due but not known
 * to be on the jobs stream: retries whose backoff elapsed, tasks accepted
 * while Redis was down, and, after Redis lost its data, all of them.
 */
export function createSweeper(o: StreamDeps & { db: Db; logger: Logger }) {
  async function sweepOnce(): Promise<{ recovered: number; enqueued: number }> {
    const recovered: Awaited<ReturnType<typeof runs.recoverExpiredLeases>> = []
    let enqueued = 0
    await o.db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(${SWEEP_LOCK}) as locked`.execute(trx)
      if (!rows[0]?.locked) return
      await reconcileRedisEpoch(trx, o.redis, o.keys, o.logger)
      recovered.push(...(await runs.recoverExpiredLeases(trx)))
      const due = await runs.lockDueUnqueued(trx, BATCH)
      // XADD before marking: a crash in between enqueues twice, which is harmless; the reverse would lose the task.
      if (due.length && !(await pushToStreams(o, due, []))) throw new Error('redis unavailable')
      await runs.markEnqueued(trx, due)
      enqueued = due.length
    })
    if (recovered.length) {
      o.logger.warn('recovered tasks whose worker stopped', { tasks: recovered.map((r) => r.id) })
      await publishChanges(o, [], recovered)
    }
    return { recovered: recovered.length, enqueued }
  }

  let timer: ReturnType<typeof setInterval> | null = null
  let busy: Promise<unknown> | null = null
  let failing = false
  return {
    sweepOnce,
    start(intervalMs: number) {
      timer = setInterval(() => {
        if (busy) return
        busy = sweepOnce()
          .then(() => {
            if (failing) o.logger.info('sweeper recovered')
            failing = false
          })
          .catch((e) => {
            if (!failing) o.logger.warn('sweep failed; will retry', { error: coerceError(e).message })
            failing = true
          })
          .finally(() => (busy = null))
      }, intervalMs)
    },
    async stop() {
      if (timer) clearInterval(timer)
      await busy
    },
  }
}
