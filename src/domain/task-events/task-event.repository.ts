import { sql, type RawBuilder } from 'kysely'
import type { Db } from '../../infra/db'
import type { Json } from '../../infra/database'
import { wallMs } from '../../infra/clock'
import { maxSeq } from '../tasks/task-status'
import type { MetricLabel } from '../tasks/task-transitions'
import { eventRowToMessage, type EventColumns, type EventRow, type TaskChange, type TaskEventMessage } from './task-event'

/** An event's detail: a JSON value, or SQL that may name the changed row's columns. */
export type EventDetail = Json | RawBuilder<Json> | null

const isRaw = (v: unknown): v is RawBuilder<Json> => typeof v === 'object' && v !== null && 'toOperationNode' in v
const jsonb = (value: EventDetail): RawBuilder<unknown> => (value === null ? sql`null` : isRaw(value) ? value : sql<Json>`${JSON.stringify(value)}::jsonb`)

/**
 * The tail of every written-out change statement: a task_events row for each
 * row of the CTE `changed` (its detail computed from that row), returned with
 * the task's columns (all, unless fewer are asked for), in id order, which for
 * an insert is input order. The event's time is the row's updated_at. The
 * history can never disagree with the row.
 */
export const withEvents = <R extends EventColumns = TaskChange>(
  changed: RawBuilder<unknown>,
  detail: EventDetail,
  columns: RawBuilder<unknown> = sql`changed.*`,
  /** What the rows come from: `changed` and `ev`, joined (a caller may join them to a row of its own). */
  from: RawBuilder<unknown> = sql`changed join ev on ev.task_id = changed.id`,
) => {
  const query = sql<R>`
    with ${changed}, ev as (
      insert into task_events (task_id, seq, status, progress, detail, at)
      select id, seq, status, progress, ${jsonb(detail)}, updated_at from changed
      returning task_id, id as event_id, detail
    )
    select ${columns}, ev.event_id, ev.detail from ${from} order by changed.id`
  return {
    /** The statement itself, for one compiled once (infra/statement.ts); its rows go through stamped(). */
    query,
    async execute(db: Db, metric: MetricLabel | null = null): Promise<{ rows: R[] }> {
      return stamped(await query.execute(db), metric)
    },
  }
}

/** A change statement's rows, with when Postgres answered and the label of the transition that made them. */
export function stamped<R extends EventColumns>({ rows }: { rows: R[] }, metric: MetricLabel | null): { rows: R[] } {
  const storedAt = wallMs()
  for (const row of rows) {
    row.stored_at = storedAt
    row.metric = metric
  }
  return { rows }
}

const selectEvents = (db: Db) =>
  db
    .selectFrom('task_events as e')
    .innerJoin('tasks as t', 't.id', 'e.task_id')
    .select(['e.id', 'e.task_id', 'e.seq', 'e.status', 'e.progress', 'e.at', 'e.detail', 't.owner_id'])

/** Seqs fit Postgres' int: the open upper bound of a gap, and of a cursor past every seq. */

/**
 * One page of a task's history: up to `limit` events with seq > afterSeq,
 * oldest first. A history can be long (every progress report is an event), so
 * nothing reads it whole.
 */
export async function listTaskEvents(db: Db, taskId: number, afterSeq: number, limit: number): Promise<TaskEventMessage[]> {
  const rows = await selectEvents(db).where('e.task_id', '=', taskId).where('e.seq', '>', Math.min(afterSeq, maxSeq)).orderBy('e.seq').limit(limit).execute()
  return rows.map(eventRowToMessage)
}

/**
 * Several tasks' missing events in one query, each task's with
 * afterSeq < seq < beforeSeq (no beforeSeq: all after), ordered by task, then
 * seq. A hub that fell behind can have thousands of gaps at once: one query
 * per task would queue thousands on the pool, ahead of every request.
 */
export async function listEventsInGaps(db: Db, gaps: readonly { taskId: number; afterSeq: number; beforeSeq?: number }[]): Promise<TaskEventMessage[]> {
  if (gaps.length === 0) return []
  const { rows } = await sql<EventRow>`
    select e.id, e.task_id, e.seq, e.status, e.progress, e.at, e.detail, t.owner_id
      from unnest(${gaps.map((g) => g.taskId)}::bigint[], ${gaps.map((g) => g.afterSeq)}::int[],
                  ${gaps.map((g) => Math.min(g.beforeSeq ?? maxSeq, maxSeq))}::int[]) as g(task_id, after_seq, before_seq)
      join task_events e on e.task_id = g.task_id and e.seq > g.after_seq and e.seq < g.before_seq
      join tasks t on t.id = e.task_id
     order by e.task_id, e.seq`.execute(db)
  return rows.map(eventRowToMessage)
}

/** The all-tasks feed after a cursor, oldest first; only one owner's tasks unless ownerId is undefined. */
export async function listEventsAfter(db: Db, afterId: number, limit: number, ownerId?: number | null): Promise<TaskEventMessage[]> {
  const rows = await selectEvents(db)
    .where('e.id', '>', afterId)
    .$if(ownerId !== undefined, (qb) => qb.where('t.owner_id', ownerId === null ? 'is' : '=', ownerId!))
    .orderBy('e.id')
    .limit(limit)
    .execute()
  return rows.map(eventRowToMessage)
}

export async function latestEventId(db: Db): Promise<number> {
  const row = await db
    .selectFrom('task_events')
    .select((eb) => eb.fn.max('id').as('id'))
    .executeTakeFirst()
  return Number(row?.id ?? 0)
}

/**
 * Each task's newest seq among the events with afterId < id <= uptoId (the
 * oldest `limit` of them): all a check for unpublished events compares with
 * what was published, in one row per task rather than one per event.
 */
export function listNewestSeqsBetween(db: Db, afterId: number, uptoId: number, limit: number) {
  const events = db.selectFrom('task_events').select(['task_id', 'seq']).where('id', '>', afterId).where('id', '<=', uptoId).orderBy('id').limit(limit)
  return db
    .selectFrom(events.as('e'))
    .select((eb) => ['e.task_id', eb.fn.max('e.seq').as('seq')])
    .groupBy('e.task_id')
    .execute()
}

/**
 * Deletes a task's history, once the task is gone (no change can add to it
 * any more, and one that committed while the delete waited is seen by this
 * fresher snapshot). Returns the cursor and time of the deletion's own event,
 * taken from the ids every event gets, so it follows every event before it.
 */
export async function deleteTaskEvents(db: Db, taskId: number): Promise<{ cursor: number; at: Date }> {
  const row = await db
    .with('gone', (qc) => qc.deleteFrom('task_events').where('task_id', '=', taskId))
    .selectNoFrom([sql<string>`nextval(pg_get_serial_sequence('task_events', 'id'))`.as('cursor'), sql<Date>`now()`.as('at')])
    .executeTakeFirstOrThrow()
  return { cursor: Number(row.cursor), at: row.at }
}
