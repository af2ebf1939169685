import { sql } from 'kysely'
import type { Expression, ExpressionBuilder, SqlBool, UpdateObject } from 'kysely'
import type { Db } from '../../infra/db'
import type { DB, Json } from '../../infra/database'
import { compileOnce } from '../../infra/statement'
import { stamped, withEvents, type EventDetail } from '../task-events/task-event.repository'
import type { TaskChange } from '../task-events/task-event'
import { columnsOf, guardOf, transitions, type MetricLabel, type Transition } from './task-transitions'
import type { CreateTaskInput, ListTasksQuery, TaskRow } from './task'

type TaskSet = UpdateObject<DB, 'tasks'> | ((eb: ExpressionBuilder<DB, 'tasks'>) => UpdateObject<DB, 'tasks'>)
export type TaskWhere = (eb: ExpressionBuilder<DB, 'tasks'>) => Expression<SqlBool>

/**
 * `id = any($1)`: one parameter whatever the number of ids, so the statement's
 * text stays the same and is prepared once (an IN list would be a new text per size).
 */
export const idIn = (ids: readonly number[]) => (eb: ExpressionBuilder<DB, 'tasks'>) => eb('id', '=', eb.fn.any(sql<readonly number[]>`${ids}::bigint[]`))

/**
 * Bumps seq, applies `set` where `where` holds, and records the matching
 * task_events row, all in one statement. Tests use it to make arbitrary
 * changes; the application changes tasks only through applyTransition.
 */
export async function changeTasks(
  db: Db,
  set: TaskSet,
  where: TaskWhere,
  detail: EventDetail = null,
  metric: MetricLabel | null = null,
): Promise<TaskChange[]> {
  const update = db
    .updateTable('tasks')
    .set(set as never)
    .set((eb) => ({ seq: eb('seq', '+', 1), updated_at: sql`now()` }))
    .where(where as never)
    .returningAll()
  const { rows } = await withEvents(sql`changed as (${update})`, detail).execute(db, metric)
  return rows
}

/** Applies a transition to the tasks `where` selects (all, without it) that are in a status it leaves from. */
export async function applyTransition<P>(db: Db, t: Transition<P>, p: P, where?: TaskWhere): Promise<TaskChange[]> {
  const guard = guardOf(t as Transition<never>)
  return changeTasks(db, columnsOf(t, p), (eb) => (where ? eb.and([where(eb), guard]) : guard), t.detail(p), t.metric)
}

/** Applies a transition to one task: its change, or undefined if the task is gone or in no status it leaves from. */
export async function applyToTask<P>(db: Db, id: number, t: Transition<P>, p: P): Promise<TaskChange | undefined> {
  const [change] = await applyTransition(db, t, p, (eb) => eb('id', '=', id))
  return change
}

/** What a create stores; every other column starts at its default. run_after null: due now. */
export type NewTask = Omit<CreateTaskInput, 'run_at' | 'delay_ms' | 'queue' | 'priority'> &
  Partial<Pick<CreateTaskInput, 'queue' | 'priority'>> & {
    owner_id: number | null
    idempotency_key: string | null
    run_after?: Date | null
    /** The HTTP request that created it, for following it into the worker's log. */
    request_id?: string | null
  }

/**
 * Inserts tasks with their first events (the create transition); a task whose
 * idempotency key exists already is skipped. The rows travel as one array per
 * column, so the statement's text is the same for 1 task or 500 (prepared once,
 * never recompiled), and ids are assigned, and rows returned, in input order.
 * Only what Postgres chose comes back (id, the time, the event's id): the rest
 * of the row is what was sent, and parsing it back was a large part of the
 * API's CPU per create.
 */
export async function insertTasks(db: Db, tasks: readonly NewTask[]): Promise<TaskChange[]> {
  const column = <K extends keyof NewTask>(k: K) => tasks.map((t) => t[k] ?? null)
  const { rows } = stamped(
    await insertStatement(db, {
      titles: column('title'),
      types: column('type'),
      payloads: tasks.map((t) => JSON.stringify(t.payload)),
      maxAttempts: column('max_attempts'),
      timeouts: column('timeout_ms'),
      owners: column('owner_id'),
      keys: column('idempotency_key'),
      runAfters: column('run_after'),
      queues: tasks.map((t) => t.queue ?? 'default'),
      priorities: tasks.map((t) => t.priority ?? 0),
      dependsOn: tasks.map((t) => (t.depends_on?.length ? JSON.stringify(t.depends_on) : null)),
      requestIds: column('request_id'),
    }),
    transitions.create.metric,
  )
  // A skipped task (its key taken) has no row: rows pair with tasks in order, skipping those.
  let i = 0
  return rows.map((r) => {
    while (tasks[i]!.idempotency_key !== r.idempotency_key) i++
    return insertedRow(tasks[i++]!, r)
  })
}

/** insertTasks' statement, compiled once: it runs for every batch of creates, and the columns are its only values. */
type InsertSlot =
  | 'titles'
  | 'types'
  | 'payloads'
  | 'maxAttempts'
  | 'timeouts'
  | 'owners'
  | 'keys'
  | 'runAfters'
  | 'queues'
  | 'priorities'
  | 'dependsOn'
  | 'requestIds'
const insertStatement = compileOnce<InsertSlot, Inserted>((slot) => {
  const initial = Object.entries(columnsOf(transitions.create, { runAfter: sql<Date | null>`v.run_after`, dependsOn: sql<number[] | null>`v.depends_on` }))
  return withEvents<Inserted>(
    sql`v as (
      select title, type, payload, max_attempts, timeout_ms, owner_id, idempotency_key, run_after, queue, priority, request_id, n,
             (select array_agg(d::bigint) from jsonb_array_elements_text(deps) d) as depends_on
        from unnest(${slot('titles')}::text[], ${slot('types')}::text[], ${slot('payloads')}::jsonb[],
                    ${slot('maxAttempts')}::int[], ${slot('timeouts')}::int[], ${slot('owners')}::bigint[],
                    ${slot('keys')}::text[], ${slot('runAfters')}::timestamptz[], ${slot('queues')}::text[],
                    ${slot('priorities')}::smallint[], ${slot('dependsOn')}::jsonb[], ${slot('requestIds')}::text[])
        with ordinality as v(title, type, payload, max_attempts, timeout_ms, owner_id, idempotency_key, run_after, queue, priority, deps, request_id, n)
    ), changed as (
      insert into tasks (title, type, payload, max_attempts, timeout_ms, owner_id, idempotency_key, queue, priority, depends_on, request_id, ${sql.join(initial.map(([c]) => sql.ref(c)))})
      select title, type, payload, max_attempts, timeout_ms, owner_id, idempotency_key, queue, priority, depends_on, request_id, ${sql.join(initial.map(([, v]) => v))} from v order by n
      on conflict (idempotency_key) where idempotency_key is not null do nothing
      returning *
    )`,
    transitions.create.detail(),
    sql`changed.id, changed.idempotency_key, changed.created_at, changed.run_after, changed.enqueued_at`,
  ).query
})

type Inserted = Pick<TaskChange, 'id' | 'idempotency_key' | 'created_at' | 'run_after' | 'enqueued_at' | 'event_id' | 'detail' | 'stored_at' | 'metric'>

/** A new task's row as the INSERT above stored it: the column defaults, and the times it returned. */
function insertedRow(t: NewTask, r: Inserted): TaskChange {
  return {
    id: r.id,
    title: t.title,
    type: t.type,
    payload: t.payload as Json,
    status: transitions.create.to,
    attempts: 0,
    max_attempts: t.max_attempts,
    timeout_ms: t.timeout_ms ?? null,
    queue: t.queue ?? 'default',
    priority: t.priority ?? 0,
    depends_on: t.depends_on?.length ? t.depends_on : null,
    request_id: t.request_id ?? null,
    progress: 0,
    result: null,
    error: null,
    seq: 1,
    idempotency_key: t.idempotency_key,
    run_after: r.run_after,
    enqueued_at: r.enqueued_at,
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
    metric: r.metric,
  }
}

export function findTaskById(db: Db, id: number): Promise<TaskRow | undefined> {
  return db.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst()
}

export function findTaskByIdempotencyKey(db: Db, key: string): Promise<TaskRow | undefined> {
  return db.selectFrom('tasks').selectAll().where('idempotency_key', '=', key).executeTakeFirst()
}

export function findTasksByIdempotencyKeys(db: Db, keys: readonly string[]): Promise<TaskRow[]> {
  return db.selectFrom('tasks').selectAll().where('idempotency_key', '=', sql<string>`any(${keys}::text[])`).execute()
}

/** Newest first; fetches one extra row to know whether there is a next page. Only ownerId's unless undefined. */
export function listTasks(db: Db, q: ListTasksQuery, ownerId?: number | null): Promise<TaskRow[]> {
  return (
    db
      .selectFrom('tasks')
      .selectAll()
      .$if(ownerId !== undefined, (qb) => qb.where('owner_id', ownerId === null ? 'is' : '=', ownerId!))
      .$if(q.status !== undefined, (qb) => qb.where('status', '=', q.status!))
      .$if(q.queue !== undefined, (qb) => qb.where('queue', '=', q.queue!))
      .$if(q.type !== undefined, (qb) => qb.where('type', '=', q.type!))
      // LIKE's own characters are matched as themselves.
      .$if(q.q !== undefined, (qb) => qb.where('title', 'ilike', `%${q.q!.replace(/[\\%_]/g, (c) => `\\${c}`)}%`))
      .$if(q.cursor !== undefined, (qb) => qb.where('id', '<', q.cursor!))
      .orderBy('id', 'desc')
      .limit(q.limit + 1)
      .execute()
  )
}

/**
 * Deletes a task; its history goes after it, in a statement of its own (see
 * deleteTaskEvents), so no change can add an event in between.
 */
export function deleteTaskById(db: Db, id: number): Promise<TaskRow | undefined> {
  return db.deleteFrom('tasks').where('id', '=', id).returningAll().executeTakeFirst()
}

/** Which of these ids name a task the owner may see (all of them for undefined: an admin, or AUTH=off). */
export async function findVisibleIds(db: Db, ids: readonly number[], ownerId?: number | null): Promise<Set<number>> {
  if (ids.length === 0) return new Set()
  const rows = await db
    .selectFrom('tasks')
    .select('id')
    .where(idIn(ids))
    .$if(ownerId !== undefined, (qb) => qb.where('owner_id', ownerId === null ? 'is' : '=', ownerId!))
    .execute()
  return new Set(rows.map((r) => r.id))
}

export function findTaskSeqs(db: Db, ids: number[]): Promise<{ id: number; seq: number }[]> {
  if (ids.length === 0) return Promise.resolve([])
  return db.selectFrom('tasks').select(['id', 'seq']).where(idIn(ids)).execute()
}
