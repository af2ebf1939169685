import { sql } from 'kysely'
import type { Expression, ExpressionBuilder, RawBuilder, SqlBool, UpdateObject } from 'kysely'
import type { Db } from '../../infra/db'
import type { DB, Json } from '../../infra/database'
import { wallMs } from '../../infra/clock'
import type { TaskEventMessage } from '../messages'
import type { CreateTaskInput, ListTasksQuery, TaskRow, TaskStatus } from './task'

/**
 * A task row just changed, with the task_events row written in the same
 * statement, and when Postgres answered (wall-clock ms): for a statement of its
 * own, the moment its commit was seen, which the events stream carries so the
 * hubs can tell how late they deliver.
 */
export type TaskChange = TaskRow & { event_id: number; detail: Json | null; stored_at: number }
/** What streaming a change reads: its event's fields, the metrics' labels and the commit time. */
export type StreamedChange = Pick<TaskChange, 'id' | 'owner_id' | 'type' | 'seq' | 'status' | 'progress' | 'updated_at' | 'event_id' | 'detail' | 'stored_at'>

type TaskSet = UpdateObject<DB, 'tasks'> | ((eb: ExpressionBuilder<DB, 'tasks'>) => UpdateObject<DB, 'tasks'>)
type TaskWhere = (eb: ExpressionBuilder<DB, 'tasks'>) => Expression<SqlBool>
type Detail = Json | RawBuilder<Json> | null

/**
 * `id = any($1)`: one parameter whatever the number of ids, so the statement's
 * text stays the same and is prepared once (an IN list would be a new text per size).
 */
export const idIn = (ids: readonly number[]) => (eb: ExpressionBuilder<DB, 'tasks'>) =>
  eb('id', '=', eb.fn.any(sql<readonly number[]>`${ids}::bigint[]`))

const jsonb = (value: Detail): RawBuilder<Json> | null =>
  value === null ? null : isRaw(value) ? value : sql<Json>`${JSON.stringify(value)}::jsonb`
const isRaw = (v: unknown): v is RawBuilder<Json> => typeof v === 'object' && v !== null && 'toOperationNode' in v

/**
 * The one way a task changes: bump seq, apply `set` where `where` holds, and
 * record the matching task_events row, all in one statement so the history can
 * never disagree with the row. `detail` may reference the updated row as
 * `changed`.
 */
export async function changeTasks(
  db: Db,
  set: TaskSet,
  where: TaskWhere,
  detail: Detail = null,
): Promise<TaskChange[]> {
  const update = db
    .updateTable('tasks')
    .set(set as never)
    .set((eb) => ({ seq: eb('seq', '+', 1), updated_at: sql`now()` }))
    .where(where as never)
    .returningAll()
  const { rows } = await withEvents(sql`changed as (${update})`, jsonb(detail) ?? sql`null`).execute(db)
  return rows
}

/** What a create stores; every other column starts at its default. */
export type NewTask = CreateTaskInput & { owner_id: number | null; idempotency_key: string | null }

/**
 * Inserts tasks, marked as queued, with their first events; a task whose
 * idempotency key exists already is skipped. The rows travel as one array per
 * column, so the statement's text is the same for 1 task or 500 (prepared once,
 * never recompiled), and ids are assigned, and rows returned, in input order.
 * Only what Postgres chose comes back (id, the time, the event's id): the rest
 * of the row is what was sent, and parsing it back was a tenth of the API's
 * CPU per create.
 */
export async function insertTasks(db: Db, tasks: readonly NewTask[]): Promise<TaskChange[]> {
  const column = <K extends keyof NewTask>(k: K) => tasks.map((t) => t[k] ?? null)
  const { rows } = await withEvents<Inserted>(
    sql`v as (
      select * from unnest(${column('title')}::text[], ${column('type')}::text[], ${tasks.map((t) => JSON.stringify(t.payload))}::jsonb[],
                           ${column('max_attempts')}::int[], ${column('timeout_ms')}::int[], ${column('owner_id')}::bigint[],
                           ${column('idempotency_key')}::text[])
        with ordinality as v(title, type, payload, max_attempts, timeout_ms, owner_id, idempotency_key, n)
    ), changed as (
      insert into tasks (title, type, payload, max_attempts, timeout_ms, owner_id, idempotency_key, enqueued_at)
      select title, type, payload, max_attempts, timeout_ms, owner_id, idempotency_key, now() from v order by n
      on conflict (idempotency_key) where idempotency_key is not null do nothing
      returning *
    )`,
    sql`null`,
    sql`changed.id, changed.idempotency_key, changed.created_at`,
  ).execute(db)
  // A skipped task (its key taken) has no row: rows pair with tasks in order, skipping those.
  let i = 0
  return rows.map((r) => {
    while (tasks[i]!.idempotency_key !== r.idempotency_key) i++
    return insertedRow(tasks[i++]!, r)
  })
}

type Inserted = Pick<TaskChange, 'id' | 'idempotency_key' | 'created_at' | 'event_id' | 'detail' | 'stored_at'>

/** A new task's row as the INSERT above stored it: the column defaults, and now() for every time it sets. */
function insertedRow(t: NewTask, r: Inserted): TaskChange {
  return {
    id: r.id,
    title: t.title,
    type: t.type,
    payload: t.payload as Json,
    status: 'PENDING',
    attempts: 0,
    max_attempts: t.max_attempts,
    timeout_ms: t.timeout_ms ?? null,
    progress: 0,
    result: null,
    error: null,
    seq: 1,
    idempotency_key: t.idempotency_key,
    run_after: r.created_at,
    enqueued_at: r.created_at,
    locked_by: null,
    locked_until: null,
    created_at: r.created_at,
    updated_at: r.created_at,
    started_at: null,
    finished_at: null,
    owner_id: t.owner_id,
    event_id: r.event_id,
    detail: r.detail,
    stored_at: r.stored_at,
  }
}

/**
 * The tail of every written-out change statement: a task_events row for each
 * row of the CTE `changed` (its detail computed from that row), returned with
 * the task's columns (all, as changeTasks does, unless fewer are asked for),
 * in id order, which for an insert is input order.
 */
export const withEvents = <R extends { stored_at: number } = TaskChange>(
  changed: RawBuilder<unknown>,
  detail: RawBuilder<unknown>,
  columns: RawBuilder<unknown> = sql`changed.*`,
) => {
  const query = sql<R>`
    with ${changed}, ev as (
      insert into task_events (task_id, seq, status, progress, detail)
      select id, seq, status, progress, ${detail} from changed
      returning task_id, id as event_id, detail
    )
    select ${columns}, ev.event_id, ev.detail from changed join ev on ev.task_id = changed.id order by changed.id`
  return {
    async execute(db: Db): Promise<{ rows: R[] }> {
      const { rows } = await query.execute(db)
      const storedAt = wallMs()
      for (const row of rows) row.stored_at = storedAt
      return { rows }
    },
  }
}

export function changeToEvent(c: StreamedChange): TaskEventMessage {
  return {
    kind: 'change',
    task_id: c.id,
    owner_id: c.owner_id,
    seq: c.seq,
    status: c.status,
    progress: c.progress,
    at: c.updated_at.toISOString(),
    cursor: c.event_id,
    detail: c.detail,
  }
}

export function findTaskById(db: Db, id: number): Promise<TaskRow | undefined> {
  return db.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst()
}

export function findTaskByIdempotencyKey(db: Db, key: string): Promise<TaskRow | undefined> {
  return db.selectFrom('tasks').selectAll().where('idempotency_key', '=', key).executeTakeFirst()
}

/** Newest first; fetches one extra row to know whether there is a next page. Only ownerId's unless undefined. */
export function listTasks(db: Db, q: ListTasksQuery, ownerId?: number | null): Promise<TaskRow[]> {
  return db
    .selectFrom('tasks')
    .selectAll()
    .$if(ownerId !== undefined, (qb) => qb.where('owner_id', ownerId === null ? 'is' : '=', ownerId!))
    .$if(q.status !== undefined, (qb) => qb.where('status', '=', q.status!))
    .$if(q.cursor !== undefined, (qb) => qb.where('id', '<', q.cursor!))
    .orderBy('id', 'desc')
    .limit(q.limit + 1)
    .execute()
}

const selectEvents = (db: Db) =>
  db
    .selectFrom('task_events as e')
    .innerJoin('tasks as t', 't.id', 'e.task_id')
    .select(['e.id', 'e.task_id', 'e.seq', 'e.status', 'e.progress', 'e.at', 'e.detail', 't.owner_id'])

/**
 * One page of a task's history: up to `limit` events with seq > afterSeq,
 * oldest first. A history can be long (every progress report is an event), so
 * nothing reads it whole.
 */
export async function listTaskEvents(db: Db, taskId: number, afterSeq: number, limit: number): Promise<TaskEventMessage[]> {
  const rows = await selectEvents(db)
    .where('e.task_id', '=', taskId)
    .where('e.seq', '>', Math.min(afterSeq, noUpperSeq))
    .orderBy('e.seq')
    .limit(limit)
    .execute()
  return rows.map(eventRowToMessage)
}

/** Seqs fit Postgres' int: the open upper bound of a gap. */
const noUpperSeq = 2_147_483_647

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
                  ${gaps.map((g) => Math.min(g.beforeSeq ?? noUpperSeq, noUpperSeq))}::int[]) as g(task_id, after_seq, before_seq)
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

type EventRow = { id: number; task_id: number; seq: number; status: TaskStatus; progress: number; at: Date; detail: Json | null; owner_id: number | null }
function eventRowToMessage(r: EventRow): TaskEventMessage {
  return { kind: 'change', task_id: r.task_id, owner_id: r.owner_id, seq: r.seq, status: r.status, progress: r.progress, at: r.at.toISOString(), cursor: r.id, detail: r.detail }
}

/**
 * Deletes a task and its history. The events go after the task, in a
 * statement of their own: once the task is gone no change can add an event
 * to it, and a change that committed while this waited for the row is seen
 * by the second statement's fresher snapshot.
 */
export async function deleteTaskById(db: Db, id: number): Promise<TaskRow | undefined> {
  const deleted = await db.deleteFrom('tasks').where('id', '=', id).returningAll().executeTakeFirst()
  if (deleted) await db.deleteFrom('task_events').where('task_id', '=', id).execute()
  return deleted
}

export async function setEnqueuedAt(db: Db, ids: number[], at: Date | null): Promise<void> {
  if (ids.length === 0) return
  await db.updateTable('tasks').set({ enqueued_at: at }).where(idIn(ids)).execute()
}

export async function latestEventId(db: Db): Promise<number> {
  const row = await db.selectFrom('task_events').select((eb) => eb.fn.max('id').as('id')).executeTakeFirst()
  return Number(row?.id ?? 0)
}

export function findTaskSeqs(db: Db, ids: number[]): Promise<{ id: number; seq: number }[]> {
  if (ids.length === 0) return Promise.resolve([])
  return db.selectFrom('tasks').select(['id', 'seq']).where(idIn(ids)).execute()
}

/**
 * Each task's newest seq among the events with afterId < id <= uptoId (the
 * oldest `limit` of them): all a check for unpublished events compares with
 * what was published, in one row per task rather than one per event.
 */
export function listNewestSeqsBetween(db: Db, afterId: number, uptoId: number, limit: number) {
  const events = db
    .selectFrom('task_events')
    .select(['task_id', 'seq'])
    .where('id', '>', afterId)
    .where('id', '<=', uptoId)
    .orderBy('id')
    .limit(limit)
  return db
    .selectFrom(events.as('e'))
    .select((eb) => ['e.task_id', eb.fn.max('e.seq').as('seq')])
    .groupBy('e.task_id')
    .execute()
}
