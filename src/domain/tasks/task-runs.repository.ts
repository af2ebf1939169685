import { sql } from 'kysely'
import type { Db } from '../../infra/db'
import { compileOnce } from '../../infra/statement'
import { stamped, withEvents } from '../task-events/task-event.repository'
import type { StreamedChange, TaskChange } from '../task-events/task-event'
import { applyTransition, idIn, type TaskWhere } from './task.repository'
import { columnsOf, guardOf, nowPlusMs, transitions } from './task-transitions'
import { TYPE_LIVENESS_MS } from '../task-types/task-type'

/**
 * Queries of a task's run: claiming, leases, progress, outcome, and the
 * sweeper's. Every change is a transition, guarded by status and, once
 * running, by (locked_by, attempts), so a duplicate job, a worker that lost
 * its lease or a cancelled task changes nothing.
 */

export interface RunKey {
  id: number
  workerId: string
  attempt: number
}

const heldBy =
  (k: RunKey): TaskWhere =>
  (eb) =>
    eb.and([eb('id', '=', k.id), eb('locked_by', '=', k.workerId), eb('attempts', '=', k.attempt)])

/** A transition's SET list, for the statements written out by hand below. */
const assignments = (set: object) => sql.join(Object.entries(set).map(([column, value]) => sql`${sql.ref(column)} = ${value}`))

const { complete } = transitions

/** finishTasks' statement, compiled once like the claim's: the runs' arrays are its only values. */
const finishStatement = compileOnce<'ids' | 'workerIds' | 'attempts' | 'results', StreamedChange>(
  (slot) =>
    withEvents<StreamedChange>(
      sql`v as (
      select * from unnest(${slot('ids')}::bigint[], ${slot('workerIds')}::text[],
                           ${slot('attempts')}::int[], ${slot('results')}::jsonb[]) as v(id, locked_by, attempt, result)
    ), changed as (
      update tasks t
         set ${assignments(columnsOf(complete, { result: sql`v.result` }))}, seq = t.seq + 1, updated_at = now()
        from v
       where t.id = v.id and t.locked_by = v.locked_by and t.attempts = v.attempt and ${guardOf(complete)}
      returning t.*
    )`,
      complete.detail(),
      // Only what its event needs: the payload and result would be sent back and parsed for nothing.
      sql`changed.id, changed.owner_id, changed.type, changed.seq, changed.status, changed.progress, changed.updated_at`,
    ).query,
)

/**
 * The complete transition for a batch of runs, in one statement (with their
 * events), each guarded by (locked_by, attempts) like every run change: under
 * load this replaces one round trip per task with one per batch. Returns the
 * changes in no particular order; a run that lost its lease (cancelled
 * meanwhile) is simply absent.
 */
export async function finishTasks(db: Db, items: { key: RunKey; resultJson: string }[]): Promise<StreamedChange[]> {
  if (items.length === 0) return []
  const result = await finishStatement(db, {
    ids: items.map((i) => i.key.id),
    workerIds: items.map((i) => i.key.workerId),
    attempts: items.map((i) => i.key.attempt),
    results: items.map((i) => i.resultJson),
  })
  return stamped(result, complete.metric).rows
}

/** A failed attempt: back to PENDING after `retryInMs`, or FAILED for good. */
export async function failAttempt(
  db: Db,
  k: RunKey,
  f: { error: string; next: 'PENDING' | 'FAILED'; retryInMs: number; stack?: string },
): Promise<TaskChange | undefined> {
  const t = f.next === 'PENDING' ? transitions.failAndRetry : transitions.fail
  const [change] = await applyTransition(db, t, { error: f.error, attempt: k.attempt, retryInMs: f.retryInMs, stack: f.stack }, heldBy(k))
  return change
}

export async function recordProgress(db: Db, k: RunKey, progress: number, message?: string): Promise<TaskChange | undefined> {
  const [change] = await applyTransition(db, transitions.reportProgress, message === undefined ? { progress } : { progress, message }, heldBy(k))
  return change
}

/** A worker shutting down gives a running task back, without counting the attempt. */
export async function handBack(db: Db, k: RunKey): Promise<TaskChange | undefined> {
  const [change] = await applyTransition(db, transitions.handBack, undefined, heldBy(k))
  return change
}

/** Extends this worker's leases; returns the ids it still holds (others were cancelled or lost). */
export async function extendLeases(db: Db, ids: number[], workerId: string, leaseMs: number): Promise<Set<number>> {
  if (ids.length === 0) return new Set()
  const rows = await db
    .updateTable('tasks')
    .set({ locked_until: nowPlusMs(leaseMs) })
    .where(idIn(ids))
    .where('status', '=', 'PROCESSING')
    .where('locked_by', '=', workerId)
    .returning('id')
    .execute()
  return new Set(rows.map((r) => r.id))
}

/** Tasks whose worker died: the attempt counts as failed; retried while attempts remain. */
export async function recoverExpiredLeases(db: Db): Promise<TaskChange[]> {
  const retried = await applyTransition(db, transitions.recover, undefined)
  const failed = await applyTransition(db, transitions.leaseLost, undefined)
  return [...retried, ...failed]
}

// Any constant works; every worker must use the same one.
const SWEEP_LOCK = 72_616_284

/** Whether this transaction is the one sweeper at work now: the lock is held until it ends, and the others skip. */
export async function trySweepLock(trx: Db): Promise<boolean> {
  const row = await trx.selectNoFrom(sql<boolean>`pg_try_advisory_xact_lock(${SWEEP_LOCK})`.as('locked')).executeTakeFirst()
  return row?.locked === true
}

/**
 * Waiting tasks (PENDING, not ready) that may run now, oldest due first: their
 * time has come and every task they depend on is COMPLETED (checked before a
 * first run only: a retry backing off ran already).
 */
export async function lockDueWaiting(db: Db, limit: number): Promise<number[]> {
  const rows = await db
    .selectFrom('tasks')
    .select('id')
    .where('status', '=', 'PENDING')
    .where('enqueued_at', 'is', null)
    .where('run_after', '<=', sql<Date>`now()`)
    .where(
      sql<boolean>`(depends_on is null or attempts > 0 or not exists (
        select 1 from unnest(tasks.depends_on) d left join tasks p on p.id = d where p.status is distinct from 'COMPLETED'))`,
    )
    // A type no live worker handles waits here, not on the jobs stream, until one registers.
    .where(({ exists, selectFrom }) =>
      exists(
        selectFrom('task_type_workers as w')
          .select(sql.lit(1).as('one'))
          .whereRef('w.type', '=', 'tasks.type')
          .where('w.last_seen_at', '>', sql<Date>`now() - make_interval(secs => ${TYPE_LIVENESS_MS / 1000})`),
      ),
    )
    .orderBy('run_after')
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute()
  return rows.map((r) => r.id)
}

/** Waiting tasks one of whose dependencies FAILED, was CANCELLED or is gone: FAILED, naming it. */
export function failBlockedDependents(db: Db): Promise<TaskChange[]> {
  return applyTransition(db, transitions.dependencyFailed, undefined, (eb) => eb.and([eb('enqueued_at', 'is', null), eb('depends_on', 'is not', null)]))
}

/** Ready to claim: the claim reads only ready tasks (tasks_ready_idx). */
export async function markReady(db: Db, ids: number[]): Promise<void> {
  if (ids.length === 0) return
  await db.updateTable('tasks').set({ enqueued_at: sql<Date>`now()` }).where(idIn(ids)).execute()
}
