import type { Db } from '../infra/db'
import type { Logger } from '../infra/logger'
import type { Redis } from '../infra/redis'
import type { StreamKeys } from '../infra/stream-keys'
import { findRedisEpoch, forgetEnqueued, saveRedisEpoch } from './tasks/task-runs.repository'

/**
 * Redis and Postgres hold the same random epoch. A Redis without it, or with
 * another, lost its data: no PENDING task can be assumed queued any more, so
 * all are marked for the sweeper to enqueue again. When neither holds one
 * (a first start) nothing is re-enqueued, so a backlog accepted before the
 * first worker started is not queued twice. Safe to run from several
 * processes at once: they converge on the value that won Redis' SET NX.
 */
export async function reconcileRedisEpoch(db: Db, redis: Redis, keys: StreamKeys, logger: Logger): Promise<void> {
  const [inRedis, inPostgres] = await Promise.all([redis.get(keys.epoch), findRedisEpoch(db, keys.prefix)])
  if (inRedis !== null && inRedis === inPostgres) return
  if (inPostgres !== undefined) {
    const n = await forgetEnqueued(db)
    logger.warn('redis lost its data (its epoch changed): pending tasks will be enqueued again from postgres', { tasks: n })
  }
  await redis.set(keys.epoch, crypto.randomUUID(), 'NX')
  const epoch = await redis.get(keys.epoch)
  if (epoch !== null) await saveRedisEpoch(db, keys.prefix, epoch)
}
