import { sql } from 'kysely'
import type { Db } from '../../infra/db'
import type { Json } from '../../infra/database'
import type { ScheduleRow, TaskTemplate } from './schedule'

export interface NewSchedule {
  owner_id: number | null
  name: string
  cron: string
  timezone: string
  task: TaskTemplate
  next_run_at: Date
}

/** The new schedule, or undefined when its owner has one of that name already. */
export function insertSchedule(db: Db, s: NewSchedule): Promise<ScheduleRow | undefined> {
  return db
    .insertInto('schedules')
    .values({ ...s, task: JSON.stringify(s.task) as unknown as Json })
    .onConflict((oc) => oc.columns(['owner_id', 'name']).doNothing())
    .returningAll()
    .executeTakeFirst()
}

export function findScheduleById(db: Db, id: number): Promise<ScheduleRow | undefined> {
  return db.selectFrom('schedules').selectAll().where('id', '=', id).executeTakeFirst()
}

/** By name; only ownerId's unless undefined. */
export function listSchedules(db: Db, ownerId?: number | null): Promise<ScheduleRow[]> {
  return db
    .selectFrom('schedules')
    .selectAll()
    .$if(ownerId !== undefined, (qb) => qb.where('owner_id', ownerId === null ? 'is' : '=', ownerId!))
    .orderBy('name')
    .orderBy('id')
    .limit(1000)
    .execute()
}

export function setSchedulePaused(db: Db, id: number, paused: boolean, nextRunAt?: Date): Promise<ScheduleRow | undefined> {
  return db
    .updateTable('schedules')
    .set({ paused, updated_at: sql`now()`, ...(nextRunAt ? { next_run_at: nextRunAt } : {}) })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst()
}

export function deleteScheduleById(db: Db, id: number): Promise<ScheduleRow | undefined> {
  return db.deleteFrom('schedules').where('id', '=', id).returningAll().executeTakeFirst()
}

/** Unpaused schedules whose next run is due, oldest first (served by the partial index on next_run_at). */
export function findDueSchedules(db: Db, now: Date, limit: number): Promise<ScheduleRow[]> {
  return db.selectFrom('schedules').selectAll().where('paused', '=', false).where('next_run_at', '<=', now).orderBy('next_run_at').limit(limit).execute()
}

/**
 * Moves a schedule past the tick it was read at. The guard (next_run_at still
 * what we read, and not paused) makes this the one claim of the tick: of two
 * workers racing, the second waits for the first's row lock, then finds the
 * guard false and updates nothing. False when another got there first.
 */
export async function advanceSchedule(db: Db, id: number, seen: Date, tick: Date, next: Date | null): Promise<boolean> {
  const r = await db
    .updateTable('schedules')
    .set({
      last_run_at: tick,
      // A pattern with no tick left (a past year) pauses itself.
      ...(next ? { next_run_at: next } : { paused: true }),
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .where('next_run_at', '=', seen)
    .where('paused', '=', false)
    .executeTakeFirst()
  return r.numUpdatedRows > 0n
}
