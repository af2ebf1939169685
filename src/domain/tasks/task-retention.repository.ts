import { sql } from 'kysely'
import type { Db } from '../../infra/db'
import type { TaskStatus } from './task'

/** A removed task: what its subscribers' last message ("deleted") is made of. */
export interface RemovedTask {
  id: number
  owner_id: number | null
  type: string
  seq: number
  status: TaskStatus
  progress: number
  /** From task_events' id sequence, as for a deletion by request (see deleteTaskEvents). */
  cursor: number
  at: Date
}

export interface FinishedFilter {
  status: TaskStatus
  finishedBefore: Date
  /** Only this owner's tasks (null: the tasks without an owner); undefined: everyone's. */
  ownerId?: number | null
}

/**
 * The oldest `limit` tasks of one terminal status finished before a time,
 * with their events, in one statement (one snapshot, one short transaction).
 * tasks_finished_idx gives the rows in order, so a batch reads about `limit`
 * entries however large the table; rows another transaction holds (a retry
 * request on one of them) are skipped, not waited for, and a row changed since
 * the snapshot is checked again against the status. Events can only be added
 * by a change of their task's row, which the row lock here excludes, so none
 * outlives its task. `= any (array(…))` rather than `in (select …)`: a join
 * the planner may choose to hash against the whole of task_events, an array
 * it looks up in the index.
 */
export async function deleteFinishedTasks(db: Db, f: FinishedFilter, limit: number): Promise<RemovedTask[]> {
  const { rows } = await finishedTasksDeletion(f, limit).execute(db)
  return rows.map((r) => ({ ...r, cursor: Number(r.cursor) }))
}

/** The statement itself, for a test to EXPLAIN. */
export function finishedTasksDeletion(f: FinishedFilter, limit: number) {
  const owner = f.ownerId === undefined ? sql`true` : f.ownerId === null ? sql`owner_id is null` : sql`owner_id = ${f.ownerId}`
  return sql<RemovedTask>`
    with doomed as (
      select id from tasks
       where status = ${f.status} and finished_at < ${f.finishedBefore} and ${owner}
       order by finished_at
       limit ${limit}
         for update skip locked
    ), events as (
      delete from task_events where task_id = any (array(select id from doomed))
    ), removed as (
      delete from tasks where id = any (array(select id from doomed))
      returning id, owner_id, type, seq, status, progress
    )
    select removed.*, nextval(pg_get_serial_sequence('task_events', 'id')) as cursor, now() as at
      from removed order by id`
}

/**
 * Held for a whole retention pass, batches included (each its own short
 * transaction): see withSessionLock. Its own number beside the migrator's
 * and the sweeper's (72_616_283, 72_616_284).
 */
export const RETENTION_LOCK = 72_616_285
