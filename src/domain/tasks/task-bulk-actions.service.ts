import { z } from 'zod'
import type { Db } from '../../infra/db'
import { publishChanges, readyIds, type StreamDeps } from '../streams'
import type { Principal } from '../tokens/token'
import { queueNameSchema, taskTypeNameSchema } from './task'
import { applyTransition, type TaskWhere } from './task.repository'
import { transitions } from './task-transitions'

/** POST /api/tasks/retry-failed/: optionally one queue's, or one type's. */
export const retryFailedSchema = z.strictObject({
  queue: queueNameSchema.optional().meta({ description: 'only this queue' }),
  type: taskTypeNameSchema.optional().meta({ description: 'only this task type' }),
})
/** POST /api/tasks/cancel-pending/: one queue's, optionally of one type. */
export const cancelPendingSchema = z.strictObject({
  queue: queueNameSchema.meta({ description: 'the queue whose PENDING tasks to cancel' }),
  type: taskTypeNameSchema.optional().meta({ description: 'only this task type' }),
})
export type BulkFilter = { queue?: string; type?: string }

const BATCH = 500

/**
 * Applies a transition to every task of the caller's (everyone's for an
 * admin) that the filter names, BATCH at a time, each change with its event,
 * as the single action would: subscribers see each task change, a retried
 * task wakes a worker, a cancelled one stops its handler. Returns the count.
 */
async function applyToAll(
  deps: StreamDeps & { db: Db },
  who: Principal,
  t: typeof transitions.retryByRequest | typeof transitions.cancel,
  f: BulkFilter,
): Promise<number> {
  const scope: TaskWhere = (eb) =>
    eb.and([
      ...(who.admin ? [] : [eb('owner_id', who.ownerId === null ? 'is' : '=', who.ownerId)]),
      ...(f.queue === undefined ? [] : [eb('queue', '=', f.queue)]),
      ...(f.type === undefined ? [] : [eb('type', '=', f.type)]),
      eb('status', 'in', t === transitions.cancel ? ['PENDING'] : ['FAILED']),
    ])
  // Each task at most once per request: batches walk up the ids that existed when it began, so a
  // task retried here that fails again before the end is not retried a second time.
  const last = await deps.db
    .selectFrom('tasks')
    .select((eb) => eb.fn.max('id').as('id'))
    .executeTakeFirst()
  const lastId = Number(last?.id ?? 0)
  let total = 0
  for (let after = 0; ; ) {
    const batch: TaskWhere = (eb) =>
      eb(
        'id',
        'in',
        eb.selectFrom('tasks').select('id').where(scope).where('id', '>', after).where('id', '<=', lastId).orderBy('id').limit(BATCH).forUpdate().skipLocked(),
      )
    const changes = await applyTransition(deps.db, t, undefined, batch)
    total += changes.length
    if (changes.length) await publishChanges(deps, readyIds(changes), changes)
    if (changes.length < BATCH) return total
    after = Math.max(...changes.map((c) => c.id))
  }
}

export const retryAllFailed = (deps: StreamDeps & { db: Db }, who: Principal, f: BulkFilter) => applyToAll(deps, who, transitions.retryByRequest, f)
export const cancelAllPending = (deps: StreamDeps & { db: Db }, who: Principal, f: BulkFilter) => applyToAll(deps, who, transitions.cancel, f)
