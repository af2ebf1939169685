import { isDeepStrictEqual } from 'node:util'
import type { Db } from '../../infra/db'
import { createBatcher, createRelay } from '../../infra/batcher'
import { ConflictError, taskNotFound, validationErrorFromIssues } from '../errors'
import { publishChanges, pushToStreams, readyIds, type StreamDeps } from '../streams'
import { coerceError } from '../../infra/logger'
import { wallMs } from '../../infra/clock'
import { deletionEvent, type TaskChange, type TaskEventMessage } from '../task-events/task-event'
import * as eventRepo from '../task-events/task-event.repository'
import {
  canCancel,
  canRetry,
  firstRunAt,
  taskRowToTask,
  type CreateTaskInput,
  type ListTaskEventsQuery,
  type ListTasksQuery,
  type Task,
  type TaskRow,
} from './task'
import * as repo from './task.repository'
import { transitions } from './task-transitions'
import type { Principal } from '../tokens/token'
import type { TaskTypeCatalogue } from '../task-types/task-type-catalogue'

export interface TaskDeps extends StreamDeps {
  db: Db
  limits?: PayloadLimits
  /** The types a POST may name and their payload schemas. */
  taskTypes: TaskTypeCatalogue
  /** Groups concurrent creates into one INSERT and one Redis round trip (see createTaskInserter). */
  inserter?: TaskInserter
}

/**
 * Creates that arrive together become one multi-row INSERT (with their events)
 * and one Redis script call: the per-request cost that dominates a busy API.
 * Postgres assigns identity values, and returns rows, in VALUES order, so each
 * caller gets its own row back. Keyed (idempotent) creates go one by one, since
 * a conflict would leave a hole in the batch. Two batches may be in Postgres
 * at once: a batch spends most of its time waiting for its commit, and with
 * one at a time, concurrent clients went in two waves taking turns.
 *
 * A create is answered once Postgres has committed it; its job and PENDING
 * event follow, pushed one batch at a time in commit order, without the
 * client waiting on Redis. Postgres is what makes it accepted: a task is
 * ready there, and a push that fails or never happens only means no worker
 * is woken for it; one finds it at its next look.
 */
export function createTaskInserter(deps: StreamDeps & { db: Db }) {
  const pushes = createRelay()
  const batcher = createBatcher(
    async (rows: repo.NewTask[]) => {
      const changes = await repo.insertTasks(deps.db, rows)
      pushes
        .next(() => enqueue(deps, changes))
        .done.catch((e) =>
          deps.logger.warn('could not push created tasks; workers will find them in postgres', { tasks: changes.length, error: coerceError(e).message }),
        )
      return changes
    },
    { lingerMs: 1, maxInFlight: 2 },
  )
  return {
    add: batcher.add,
    /** Settles once every push handed over so far has: a shutdown waits for it before closing Redis. */
    pushed: pushes.idle,
  }
}
export type TaskInserter = ReturnType<typeof createTaskInserter>

export interface PayloadLimits {
  maxPayloadBytes: number
  maxPayloadDepth: number
}

const defaultLimits: PayloadLimits = { maxPayloadBytes: 65_536, maxPayloadDepth: 16 }

function depthOf(value: unknown, limit: number, depth = 1): number {
  if (depth > limit || value === null || typeof value !== 'object') return depth
  let max = depth
  for (const v of Object.values(value)) max = Math.max(max, depthOf(v, limit, depth + 1))
  return max
}

/** Checks the payload against our size limits and its type's schema, so a bad one never reaches a worker. */
export async function validatePayload(deps: TaskDeps, input: CreateTaskInput): Promise<void> {
  const limits = deps.limits ?? defaultLimits
  if (depthOf(input.payload, limits.maxPayloadDepth) > limits.maxPayloadDepth) {
    throw validationErrorFromIssues([{ path: ['payload'], message: `payload must not nest deeper than ${limits.maxPayloadDepth} levels` }])
  }
  if (Buffer.byteLength(JSON.stringify(input.payload)) > limits.maxPayloadBytes) {
    throw validationErrorFromIssues([{ path: ['payload'], message: `payload must be at most ${limits.maxPayloadBytes} bytes of JSON` }])
  }
  await deps.taskTypes.validate(input.type, input.payload)
}

/** depends_on may name only tasks the caller can see: another owner's task reads as missing, as it does everywhere. */
export async function validateDependencies(deps: TaskDeps, who: Principal, input: CreateTaskInput): Promise<void> {
  const ids = input.depends_on ?? []
  if (ids.length === 0) return
  const visible = await repo.findVisibleIds(deps.db, ids, who.admin ? undefined : who.ownerId)
  const issues = ids.flatMap((id, i) => (visible.has(id) ? [] : [{ path: ['depends_on', i], message: `task ${id} not found` }]))
  if (issues.length) throw validationErrorFromIssues(issues)
}

/** Idempotency keys are per owner: two clients may use the same key without meeting. */
export const scopedKey = (who: Principal, key: string) => `${who.ownerId ?? 'anonymous'}/${key}`

/** The row a create stores for this input: its first run time from run_at or delay_ms. */
export function newTaskRow(input: CreateTaskInput, who: Principal, key: string | null, requestId?: string): repo.NewTask {
  const { run_at: _at, delay_ms: _delay, ...fields } = input
  return { ...fields, owner_id: who.ownerId, idempotency_key: key, run_after: firstRunAt(input), request_id: requestId ?? null }
}

/** Whether a stored task is what this input would create (a retried request), timing aside. */
export function sameRequest(row: TaskRow, input: CreateTaskInput): boolean {
  // jsonb stores object keys in its own order, so compare payloads structurally:
  // comparing JSON strings would call an identical retry a conflict.
  return (
    row.title === input.title &&
    row.type === input.type &&
    row.max_attempts === input.max_attempts &&
    (row.timeout_ms ?? undefined) === input.timeout_ms &&
    row.queue === input.queue &&
    row.priority === input.priority &&
    isDeepStrictEqual(row.depends_on ?? [], input.depends_on ?? []) &&
    isDeepStrictEqual(row.payload, input.payload)
  )
}

export async function createTask(
  deps: TaskDeps,
  who: Principal,
  input: CreateTaskInput,
  idempotencyKey?: string,
  requestId?: string,
): Promise<{ task: Task; created: boolean }> {
  await validatePayload(deps, input)
  await validateDependencies(deps, who, input)
  const key = idempotencyKey === undefined ? null : scopedKey(who, idempotencyKey)
  const row = newTaskRow(input, who, key, requestId)
  if (key === null && deps.inserter) return { task: taskRowToTask(await deps.inserter.add(row)), created: true }
  const [change] = await repo.insertTasks(deps.db, [row])
  if (!change) return { task: await replayIdempotent(deps.db, input, key!, idempotencyKey!), created: false }
  await enqueue(deps, [change])
  return { task: taskRowToTask(change), created: true }
}

/** A retried POST gets the task its key first created, unless it asks for something else. */
async function replayIdempotent(db: Db, input: CreateTaskInput, key: string, shownKey: string): Promise<Task> {
  const row = await repo.findTaskByIdempotencyKey(db, key)
  if (!row) throw new ConflictError('idempotency key is in use by a task being deleted; retry', 'idempotency_conflict')
  if (!sameRequest(row, input)) {
    throw new ConflictError(`Idempotency-Key "${shownKey}" was already used for a different request (task ${row.id})`, 'idempotency_conflict')
  }
  return taskRowToTask(row)
}

/**
 * Streams new or retried tasks' PENDING events, with a job waking a worker
 * for each that is ready now; a delayed or dependent task's job is pushed by
 * the sweeper when it becomes ready.
 */
export async function enqueue(deps: StreamDeps, changes: TaskChange[]): Promise<void> {
  await publishChanges(deps, readyIds(changes), changes)
}

async function publish(deps: TaskDeps, changes: TaskChange[]): Promise<void> {
  await publishChanges(deps, [], changes)
}

/** Another owner's task answers exactly like a missing one: its existence is not revealed. */
const visibleTo = (who: Principal, row: TaskRow) => who.admin || row.owner_id === who.ownerId

async function mustFind(db: Db, who: Principal, id: number): Promise<TaskRow> {
  const row = await repo.findTaskById(db, id)
  if (!row || !visibleTo(who, row)) throw taskNotFound(id)
  return row
}

export async function getTask(deps: TaskDeps, who: Principal, id: number): Promise<Task> {
  return taskRowToTask(await mustFind(deps.db, who, id))
}

export async function listTasks(deps: TaskDeps, who: Principal, q: ListTasksQuery): Promise<{ tasks: Task[]; nextCursor: number | null }> {
  const rows = await repo.listTasks(deps.db, q, who.admin ? undefined : who.ownerId)
  const page = rows.slice(0, q.limit)
  const nextCursor = rows.length > q.limit ? page[page.length - 1]!.id : null
  return { tasks: page.map(taskRowToTask), nextCursor }
}

/** One page of a task's history, oldest first; nextAfterSeq is null on the last page. */
export async function listTaskEvents(
  deps: TaskDeps,
  who: Principal,
  id: number,
  q: ListTaskEventsQuery,
): Promise<{ events: TaskEventMessage[]; nextAfterSeq: number | null }> {
  await mustFind(deps.db, who, id)
  // One more than asked for tells whether another page follows.
  const rows = await eventRepo.listTaskEvents(deps.db, id, q.after_seq, q.limit + 1)
  const events = rows.slice(0, q.limit)
  return { events, nextAfterSeq: rows.length > q.limit ? events.at(-1)!.seq : null }
}

// The changes below check visibility first; ownership never changes, so the
// transition that follows needs only the id (it guards the status itself).

export async function updateTaskTitle(deps: TaskDeps, who: Principal, id: number, title: string): Promise<Task> {
  await mustFind(deps.db, who, id)
  const change = await repo.applyToTask(deps.db, id, transitions.rename, { title })
  if (!change) throw taskNotFound(id)
  await publish(deps, [change])
  return taskRowToTask(change)
}

/** PENDING or PROCESSING -> CANCELLED; a running handler learns it from the event and aborts. */
export async function cancelTask(deps: TaskDeps, who: Principal, id: number): Promise<Task> {
  for (;;) {
    const row = await mustFind(deps.db, who, id)
    if (!canCancel(row.status)) throw new ConflictError(`task ${id} is ${row.status}; only PENDING or PROCESSING tasks can be cancelled`)
    const change = await repo.applyToTask(deps.db, id, transitions.cancel, undefined)
    if (!change) continue // it changed status between our read and our write: decide again
    await publish(deps, [change])
    return taskRowToTask(change)
  }
}

/** FAILED or CANCELLED -> PENDING with a fresh attempt budget, enqueued again. */
export async function retryTask(deps: TaskDeps, who: Principal, id: number): Promise<Task> {
  for (;;) {
    const row = await mustFind(deps.db, who, id)
    if (!canRetry(row.status)) throw new ConflictError(`task ${id} is ${row.status}; only FAILED or CANCELLED tasks can be retried`)
    const change = await repo.applyToTask(deps.db, id, transitions.retryByRequest, undefined)
    if (!change) continue
    await enqueue(deps, [change])
    return taskRowToTask(change)
  }
}

/** Cancels an active task first, so its subscribers and its worker hear of it. */
export async function deleteTask(deps: TaskDeps, who: Principal, id: number): Promise<void> {
  const row = await mustFind(deps.db, who, id)
  if (canCancel(row.status)) await cancelTask(deps, who, id).catch((e) => (e instanceof ConflictError ? undefined : Promise.reject(e)))
  const deleted = await repo.deleteTaskById(deps.db, id)
  if (!deleted) throw taskNotFound(id)
  const gone = await eventRepo.deleteTaskEvents(deps.db, id)
  await pushToStreams(deps, [], [{ message: deletionEvent(deleted, gone), storedAt: wallMs() }])
}
