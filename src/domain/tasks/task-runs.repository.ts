import { sql } from 'kysely'
import type { Db } from '../../infra/db'
import type { Json } from '../../infra/database'
import { changeTasks, idIn, withEvents, type StreamedChange, type TaskChange } from './task.repository'

/**
 * Queries of a task's run: claiming, leases, progress, outcome. Every one is
 * guarded by status and, once running, by (locked_by, attempts), so a duplicate
 * job, a worker that lost its lease or a cancelled task changes nothing.
 */

export interface RunKey {
  id: number
  workerId: string
  attempt: number
}

const leaseUntil = (ms: number) => sql<Date>`now() + make_interval(secs => ${ms / 1000})`

const heldBy = (k: RunKey) => (eb: Parameters<Parameters<typeof changeTasks>[2]>[0]) =>
  eb.and([eb('id', '=', k.id), eb('status', '=', 'PROCESSING'), eb('locked_by', '=', k.workerId), eb('attempts', '=', k.attempt)])

/**
 * PENDING and due -> PROCESSING under this worker's lease, one statement for
 * the whole batch. Written out rather than built with changeTasks (whose
 * statement it matches): it runs once per batch read, and at low load that is
 * once per task, where building and compiling the query was a quarter of the
 * worker's CPU.
 */
export async function claimTasks(db: Db, ids: number[], workerId: string, leaseMs: number): Promise<TaskChange[]> {
  if (ids.length === 0) return []
  const { rows } = await withEvents(
    sql`changed as (
      update tasks
         set status = 'PROCESSING', attempts = attempts + 1, progress = 0, locked_by = ${workerId},
             locked_until = ${leaseUntil(leaseMs)}, started_at = coalesce(started_at, now()), seq = seq + 1, updated_at = now()
       where id = any(${ids}::bigint[]) and status = 'PENDING' and run_after <= now()
      returning *
    )`,
    sql`jsonb_build_object('attempt', attempts)`,
  ).execute(db)
  return rows
}

/**
 * COMPLETED outcomes in one statement (with their events), each guarded by
 * (status, locked_by, attempts) like every run change: under load this replaces one round trip per task with one
 * per batch. Returns the changes in no particular order; a run that lost its
 * lease (cancelled meanwhile) is simply absent.
 */
export async function finishTasks(db: Db, items: { key: RunKey; result: unknown }[]): Promise<StreamedChange[]> {
  if (items.length === 0) return []
  const results = items.map((i) => JSON.stringify(i.result === undefined ? null : i.result))
  const { rows } = await withEvents<StreamedChange>(
    sql`v as (
      select * from unnest(${items.map((i) => i.key.id)}::bigint[], ${items.map((i) => i.key.workerId)}::text[],
                           ${items.map((i) => i.key.attempt)}::int[], ${results}::jsonb[]) as v(id, locked_by, attempt, result)
    ), changed as (
      update tasks t
         set status = 'COMPLETED', progress = 1, result = v.result, error = null, locked_by = null, locked_until = null,
             finished_at = now(), seq = t.seq + 1, updated_at = now()
        from v
       where t.id = v.id and t.status = 'PROCESSING' and t.locked_by = v.locked_by and t.attempts = v.attempt
      returning t.*
    )`,
    sql`jsonb_build_object('result', result)`,
    // Only what its event needs: the payload and result would be sent back and parsed for nothing.
    sql`changed.id, changed.owner_id, changed.type, changed.seq, changed.status, changed.progress, changed.updated_at`,
  ).execute(db)
  return rows
}

/** A failed attempt: back to PENDING after `retryInMs`, or FAILED for good. */
export async function failAttempt(
  db: Db,
  k: RunKey,
  error: string,
  next: 'PENDING' | 'FAILED',
  retryInMs: number,
): Promise<TaskChange | undefined> {
  const retry = next === 'PENDING'
  const [change] = await changeTasks(
    db,
    {
      status: next,
      error,
      locked_by: null,
      locked_until: null,
      enqueued_at: null,
      run_after: retry ? leaseUntil(retryInMs) : sql`run_after`,
      finished_at: retry ? null : sql`now()`,
    },
    heldBy(k),
    retry ? { error, attempt: k.attempt, retry_in_ms: retryInMs } : { error, attempt: k.attempt },
  )
  return change
}

export async function recordProgress(db: Db, k: RunKey, progress: number): Promise<TaskChange | undefined> {
  const [change] = await changeTasks(db, { progress, locked_until: sql`locked_until` }, heldBy(k))
  return change
}

/** A worker shutting down gives a running task back, without counting the attempt. */
export async function handBack(db: Db, k: RunKey): Promise<TaskChange | undefined> {
  const [change] = await changeTasks(
    db,
    (eb) => ({
      status: 'PENDING',
      attempts: eb('attempts', '-', 1),
      progress: 0,
      locked_by: null,
      locked_until: null,
      enqueued_at: null,
      run_after: sql`now()`,
    }),
    heldBy(k),
    { reason: 'worker shut down before the task finished; it will run again' },
  )
  return change
}

/** A task whose job can never be run: FAILED whatever its state, unless already finished. */
export function failForGood(db: Db, id: number, error: string): Promise<TaskChange[]> {
  return changeTasks(
    db,
    { status: 'FAILED', error, locked_by: null, locked_until: null, finished_at: sql`now()` },
    (eb) => eb.and([eb('id', '=', id), eb('status', 'in', ['PENDING', 'PROCESSING'])]),
    { error },
  )
}

/** Extends this worker's leases; returns the ids it still holds (others were cancelled or lost). */
export async function extendLeases(db: Db, ids: number[], workerId: string, leaseMs: number): Promise<Set<number>> {
  if (ids.length === 0) return new Set()
  const rows = await db
    .updateTable('tasks')
    .set({ locked_until: leaseUntil(leaseMs) })
    .where(idIn(ids))
    .where('status', '=', 'PROCESSING')
    .where('locked_by', '=', workerId)
    .returning('id')
    .execute()
  return new Set(rows.map((r) => r.id))
}

/** Tasks whose worker died: the attempt counts as failed; retried while attempts remain. */
export async function recoverExpiredLeases(db: Db): Promise<TaskChange[]> {
  const error = 'worker lost: its lease expired before the attempt finished'
  const expired = (eb: Parameters<Parameters<typeof changeTasks>[2]>[0]) =>
    eb.and([eb('status', '=', 'PROCESSING'), eb('locked_until', '<', sql<Date>`now()`)])
  const retried = await changeTasks(
    db,
    { status: 'PENDING', error, locked_by: null, locked_until: null, enqueued_at: null, run_after: sql`now()` },
    (eb) => eb.and([expired(eb), eb('attempts', '<', eb.ref('max_attempts'))]),
    { error },
  )
  const failed = await changeTasks(
    db,
    { status: 'FAILED', error, locked_by: null, locked_until: null, finished_at: sql`now()` },
    (eb) => eb.and([expired(eb), eb('attempts', '>=', eb.ref('max_attempts'))]),
    { error },
  )
  return [...retried, ...failed]
}

/** PENDING tasks that are due and not known to be on the jobs stream, oldest first. */
export async function lockDueUnqueued(db: Db, limit: number): Promise<number[]> {
  const rows = await db
    .selectFrom('tasks')
    .select('id')
    .where('status', '=', 'PENDING')
    .where('enqueued_at', 'is', null)
    .where('run_after', '<=', sql<Date>`now()`)
    .orderBy('run_after')
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute()
  return rows.map((r) => r.id)
}

/** PENDING tasks marked as queued more than staleMs ago, when the queue is known to be empty: queue them again. */
export async function forgetStaleEnqueued(db: Db, staleMs: number): Promise<number> {
  const res = await db
    .updateTable('tasks')
    .set({ enqueued_at: null })
    .where('status', '=', 'PENDING')
    .where('run_after', '<=', sql<Date>`now()`)
    .where('enqueued_at', '<', sql<Date>`now() - make_interval(secs => ${staleMs / 1000})`)
    .executeTakeFirst()
  return Number(res.numUpdatedRows)
}

/** After Redis lost its data, no PENDING task can be assumed to be queued. */
export async function forgetEnqueued(db: Db): Promise<number> {
  const res = await db.updateTable('tasks').set({ enqueued_at: null }).where('status', '=', 'PENDING').executeTakeFirst()
  return Number(res.numUpdatedRows)
}

/** Which of these ids name no task at all (a job for a deleted or never-created task). */
export async function findMissingIds(db: Db, ids: number[]): Promise<number[]> {
  if (ids.length === 0) return []
  const found = await db.selectFrom('tasks').select('id').where(idIn(ids)).execute()
  const present = new Set(found.map((r) => r.id))
  return ids.filter((id) => !present.has(id))
}

export async function markEnqueued(db: Db, ids: number[]): Promise<void> {
  if (ids.length === 0) return
  await db.updateTable('tasks').set({ enqueued_at: sql<Date>`now()` }).where(idIn(ids)).execute()
}

export async function findRedisEpoch(db: Db, keyPrefix: string): Promise<string | undefined> {
  const row = await db.selectFrom('redis_epoch').select('epoch').where('key_prefix', '=', keyPrefix).executeTakeFirst()
  return row?.epoch
}

export async function saveRedisEpoch(db: Db, keyPrefix: string, epoch: string): Promise<void> {
  await db
    .insertInto('redis_epoch')
    .values({ key_prefix: keyPrefix, epoch })
    .onConflict((oc) => oc.column('key_prefix').doUpdateSet({ epoch, set_at: sql`now()` }))
    .execute()
}
