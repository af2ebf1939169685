import { z } from 'zod'
import type { Selectable } from 'kysely'
import type { TaskStatus, Tasks } from '../../infra/database'
import { maxSeq, taskStatuses } from './task-status'

export type { TaskStatus }
export type TaskRow = Selectable<Tasks>

export { taskStatuses, terminalStatuses, cancellableStatuses, retryableStatuses, isTerminal, canCancel, canRetry } from './task-status'
export const taskStatusSchema = z.enum(taskStatuses)

/** Why Postgres cannot store this text as sent (text and jsonb refuse NUL; jsonb refuses a lone surrogate's escape), or null. */
const textProblem = (s: string): string | null =>
  s.includes('\0') ? 'must not contain NUL characters (\\u0000)' : s.isWellFormed() ? null : 'must not contain lone surrogates (half of a UTF-16 pair)'

/** A string field Postgres stores as sent: NUL and lone surrogates are refused, naming the field, rather than failing the INSERT as a 500. */
export const storable = (name: string, s: z.ZodString) =>
  s.superRefine((v, ctx) => {
    const why = textProblem(v)
    if (why) ctx.addIssue({ code: 'custom', message: `${name} ${why}` })
  })

/** A string field a body must have: its absence and its wrong type get messages of their own. */
export const requiredString = (name: string) => z.string({ error: (iss) => (iss.input === undefined ? `${name} is required` : `${name} must be a string`) })

const titleSchema = storable('title', requiredString('title').trim().min(1, 'title must not be empty').max(200, 'title must be at most 200 characters'))

/** A task type's name, as a POST, a filter or a bulk action names it. */
export const taskTypeNameSchema = storable(
  'type',
  z.string({ error: 'type must be a string' }).min(1, 'type must not be empty').max(100, 'type must be at most 100 characters'),
)

/**
 * A whole number within [min, max], its range checked before its
 * integrality: zod's own first complaint about 1e308 would be the safe
 * integer range, not this field's.
 */
const boundedInt = (name: string, min: number, max: number, tooBig = `${name} must be at most ${max}`) =>
  z
    .number({ error: `${name} must be an integer` })
    .min(min, `${name} must be at least ${min}`)
    .max(max, tooBig)
    .int(`${name} must be an integer`)

const maxAttemptsSchema = boundedInt('max_attempts', 1, 100)
/** Limit on one attempt; past it the handler is aborted and the attempt counts as failed. */
const timeoutMsSchema = boundedInt('timeout_ms', 1, 86_400_000, 'timeout_ms must be at most a day (86400000)')

/** A value in a JSON tree, with the way back to its root for naming it. */
type Visit = { value: unknown; key: string | number | null; parent: Visit | null }
const pathOf = (v: Visit): (string | number)[] => (v.parent === null ? [] : [...pathOf(v.parent), v.key!])

/**
 * The first thing in a JSON value that would not be stored as sent, with its
 * path: a string or key Postgres refuses, or a number JSON cannot carry
 * (1e400 parses as Infinity, which jsonb would store as null). Walked with a
 * stack, not recursion: the depth limit is checked after this.
 */
function unstorableJson(value: unknown): { path: (string | number)[]; message: string } | null {
  const stack: Visit[] = [{ value, key: null, parent: null }]
  while (stack.length > 0) {
    const at = stack.pop()!
    const v = at.value
    if (typeof v === 'string') {
      const why = textProblem(v)
      if (why) return { path: pathOf(at), message: why }
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) return { path: pathOf(at), message: 'must be a finite number (JSON has no Infinity or NaN)' }
    } else if (typeof v === 'object' && v !== null) {
      const list = Array.isArray(v)
      const entries = Object.entries(v)
      for (const [k] of entries) {
        const why = list ? null : textProblem(k)
        if (why) return { path: [...pathOf(at), k], message: `key ${why}` }
      }
      // Pushed last first, so they are looked at in document order: the first problem is the one named.
      for (let i = entries.length - 1; i >= 0; i--) stack.push({ value: entries[i]![1], key: list ? i : entries[i]![0], parent: at })
    }
  }
  return null
}

/** A JSON object Postgres stores exactly as sent: each problem named at its own path. */
const payloadSchema = z.record(z.string(), z.unknown(), { error: 'payload must be a JSON object' }).superRefine((payload, ctx) => {
  const problem = unstorableJson(payload)
  if (problem) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message })
})

/** A queue's name: what QUEUES, QUEUE_CONCURRENCY and the queue routes name it by. */
export const queueNameSchema = z
  .string({ error: 'queue must be a string' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'queue must be 1-64 letters, digits, _ . or -, starting with a letter or digit')

/** Ready tasks of one owner in one queue run highest priority first. */
export const MIN_PRIORITY = -10
export const MAX_PRIORITY = 10
export const prioritySchema = z
  .number({ error: 'priority must be an integer' })
  .int('priority must be an integer')
  .min(MIN_PRIORITY, `priority must be at least ${MIN_PRIORITY}`)
  .max(MAX_PRIORITY, `priority must be at most ${MAX_PRIORITY}`)

/** The most tasks one task may wait for. */
export const MAX_DEPENDENCIES = 100

/** The longest a task may be delayed: further out is almost surely a unit mistake (seconds for ms). */
export const MAX_DELAY_MS = 366 * 24 * 3_600_000

/** A new task's fields, each checked on its own: a schedule's template takes some of them as they are. */
export const taskFieldsSchema = z.strictObject({
  title: titleSchema,
  type: taskTypeNameSchema.default('demo'),
  payload: payloadSchema.default({}),
  max_attempts: maxAttemptsSchema.default(3),
  timeout_ms: timeoutMsSchema.optional(),
  run_at: z.iso
    .datetime({ offset: true, error: 'run_at must be an ISO 8601 time with a zone, like 2026-12-24T18:00:00Z' })
    .optional()
    .meta({ description: 'not before this time (a past time runs now); or give delay_ms' }),
  delay_ms: boundedInt('delay_ms', 0, MAX_DELAY_MS, 'delay_ms must be at most a year')
    .optional()
    .meta({ description: 'not before this many ms from now; or give run_at' }),
  queue: queueNameSchema.default('default').meta({ description: 'the queue it waits in; workers serve the queues in QUEUES' }),
  priority: prioritySchema.default(0).meta({ description: `${MIN_PRIORITY}..${MAX_PRIORITY}; among one owner's ready tasks of a queue, higher runs first` }),
  depends_on: z
    .array(z.number().int().positive().max(Number.MAX_SAFE_INTEGER), { error: 'depends_on must be an array of task ids' })
    // abort: nothing after it looks at a list this long (a body can hold a hundred thousand ids).
    .max(MAX_DEPENDENCIES, { error: `depends_on must name at most ${MAX_DEPENDENCIES} tasks`, abort: true })
    // Stored as sent: a repeated id would come back in the task, and a retry without it would be a conflict.
    .superRefine((ids, ctx) => {
      const seen = new Set<number>()
      for (const [i, id] of ids.entries()) {
        if (seen.has(id)) ctx.addIssue({ code: 'custom', path: [i], message: `task ${id} is named twice` })
        seen.add(id)
      }
    })
    .optional()
    .meta({ description: 'ids of your tasks that must be COMPLETED first; if one FAILs or is CANCELLED, this task FAILs' }),
})

export const createTaskSchema = taskFieldsSchema.superRefine((t, ctx) => {
  if (t.run_at !== undefined && t.delay_ms !== undefined) ctx.addIssue({ code: 'custom', path: ['delay_ms'], message: 'give run_at or delay_ms, not both' })
  else if (t.run_at !== undefined && Date.parse(t.run_at) - Date.now() > MAX_DELAY_MS)
    ctx.addIssue({ code: 'custom', path: ['run_at'], message: 'run_at must be within a year' })
})
export type CreateTaskInput = z.infer<typeof createTaskSchema>

/** When a new task may first run: null for now. */
export function firstRunAt(t: Pick<CreateTaskInput, 'run_at' | 'delay_ms'>, now = Date.now()): Date | null {
  if (t.delay_ms) return new Date(now + t.delay_ms)
  if (t.run_at !== undefined && Date.parse(t.run_at) > now) return new Date(t.run_at)
  return null
}

export const updateTaskSchema = z.strictObject({ title: titleSchema })
export type UpdateTaskInput = z.infer<typeof updateTaskSchema>

/**
 * A whole number in a path or query, written in plain decimal digits (from 0,
 * or from 1), at most max. z.coerce.number would also take "1e3", "0x10" and
 * " 1", so /tasks/1e3 would answer for task 1000. A parameter given twice
 * arrives as a list, which no number stands for.
 */
const digits = (o: { zero: boolean; max: number; invalid: string; tooBig: string; repeated?: string }) =>
  z
    .string({ error: (iss) => (o.repeated && Array.isArray(iss.input) ? o.repeated : o.invalid) })
    .regex(o.zero ? /^(0|[1-9][0-9]*)$/ : /^[1-9][0-9]*$/, o.invalid)
    .transform(Number)
    .refine((n) => n <= o.max, o.tooBig)

export const positiveIntString = (name: string) =>
  digits({ zero: false, max: Number.MAX_SAFE_INTEGER, invalid: `${name} must be a positive integer`, tooBig: `${name} is too large` })

export const taskIdSchema = positiveIntString('id')

/** A page size, 1..max. */
const pageLimit = (max: number, byDefault: number) => {
  const range = `limit must be an integer from 1 to ${max}`
  return digits({ zero: false, max, invalid: range, tooBig: range, repeated: 'limit must be given once' }).default(byDefault)
}

export const listTasksQuerySchema = z.strictObject({
  status: taskStatusSchema.optional(),
  queue: queueNameSchema.optional().meta({ description: 'only tasks of this queue' }),
  type: taskTypeNameSchema.optional().meta({ description: 'only tasks of this type' }),
  q: storable('q', z.string().trim().min(1).max(200)).optional().meta({ description: 'only tasks whose title contains this, ignoring case' }),
  limit: pageLimit(100, 20),
  cursor: positiveIntString('cursor').optional(),
})
export type ListTasksQuery = z.infer<typeof listTasksQuerySchema>

/** A cursor, 0..max: the same spelling everywhere one is taken (REST and sockets). */
export const cursorString = (name: string, max: number) =>
  digits({ zero: true, max, invalid: `${name} must be a non-negative integer`, tooBig: `${name} must be at most ${max}` })

/** Seqs are Postgres integers: a cursor past the largest could only fail the query. */
export const afterSeqSchema = cursorString('after_seq', maxSeq)

export const listTaskEventsQuerySchema = z.strictObject({
  limit: pageLimit(1000, 100).meta({ description: 'events per page, 1..1000' }),
  after_seq: afterSeqSchema.default(0).meta({ description: 'only events with a greater seq: the last seq of the page before (from `next`)' }),
})
export type ListTaskEventsQuery = z.infer<typeof listTaskEventsQuerySchema>

/** DELETE /api/tasks/: finished tasks of one status, finished before a time. */
export const deleteFinishedTasksQuerySchema = z.strictObject({
  status: z
    .enum(['COMPLETED', 'FAILED', 'CANCELLED'], { error: 'status must be COMPLETED, FAILED or CANCELLED (only finished tasks are deleted this way)' })
    .meta({ description: 'a terminal status: COMPLETED, FAILED or CANCELLED' }),
  finished_before: z.iso
    .datetime({ offset: true, error: 'finished_before must be an ISO 8601 time with a zone, like 2026-12-01T00:00:00Z' })
    .meta({ description: 'only tasks that finished before this time' }),
})
export type DeleteFinishedTasksQuery = z.infer<typeof deleteFinishedTasksQuerySchema>

const timestamp = z.iso.datetime({ offset: true })
const jsonValue = (description: string) => z.unknown().meta({ description })

/**
 * The task as the API answers it. /openapi.json is generated from this schema,
 * and taskRowToTask below is checked against it by the compiler, so the
 * document cannot drift from what the code sends.
 */
export const taskSchema = z
  .object({
    id: z.number().int().positive(),
    title: z.string(),
    type: z.string().meta({ description: 'handler name; see src/handlers/registry.ts' }),
    payload: z.record(z.string(), z.unknown()).meta({ description: "the handler's input, a JSON object" }),
    status: taskStatusSchema,
    attempts: z.number().int().min(0).meta({ description: 'attempts started so far' }),
    max_attempts: z.number().int().min(1),
    timeout_ms: z.number().int().positive().nullable().meta({ description: 'limit on one attempt; null: the handler default or TASK_TIMEOUT_MS' }),
    progress: z.number().min(0).max(1),
    result: jsonValue("the handler's return value once COMPLETED, else null"),
    error: z.string().nullable().meta({ description: 'why the last attempt failed' }),
    seq: z.number().int().positive().meta({ description: 'bumped by one on every change; the same seq the WebSocket messages carry' }),
    queue: z.string(),
    priority: z.number().int().min(MIN_PRIORITY).max(MAX_PRIORITY),
    depends_on: z.array(z.number().int().positive()).meta({ description: 'tasks that must be COMPLETED before it runs' }),
    run_after: timestamp.nullable().meta({ description: 'while PENDING: when it may run next (a delayed task, or a retry backing off)' }),
    created_at: timestamp,
    updated_at: timestamp,
    started_at: timestamp.nullable(),
    finished_at: timestamp.nullable(),
  })
  .meta({ id: 'Task' })

/** Compile-time: the two types have exactly the same keys (satisfies checks the values). */
type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never] ? true : never

/** The task as clients see it: internal bookkeeping (lease, outbox) stays inside. */
export function taskRowToTask(row: TaskRow) {
  return {
    id: row.id,
    title: row.title,
    type: row.type,
    // Only objects are ever stored (createTaskSchema); the column's type is any JSON.
    payload: row.payload as Record<string, unknown>,
    status: row.status,
    attempts: row.attempts,
    max_attempts: row.max_attempts,
    timeout_ms: row.timeout_ms,
    progress: row.progress,
    result: row.result,
    error: row.error,
    seq: row.seq,
    queue: row.queue,
    priority: row.priority,
    depends_on: row.depends_on ?? [],
    run_after: row.status === 'PENDING' ? row.run_after.toISOString() : null,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    started_at: row.started_at?.toISOString() ?? null,
    finished_at: row.finished_at?.toISOString() ?? null,
  } satisfies z.output<typeof taskSchema>
}
export type Task = ReturnType<typeof taskRowToTask>
// The reverse direction of the satisfies above: no field the schema promises is missing.
const taskShapeAgrees: SameKeys<Task, z.output<typeof taskSchema>> = true
void taskShapeAgrees

/** After a failed attempt: try again while attempts remain, else the task has FAILED. */
export function nextStatusAfterFailure(attempts: number, maxAttempts: number): 'PENDING' | 'FAILED' {
  return attempts < maxAttempts ? 'PENDING' : 'FAILED'
}

/**
 * Exponential backoff with full jitter between half and the whole step, so a
 * burst of failures does not retry in lock-step: attempt 1 waits ~base,
 * attempt 2 ~2*base, ... capped at an hour.
 */
export function retryDelayMs(attempt: number, baseMs: number, random = Math.random): number {
  const step = Math.min(baseMs * 2 ** Math.max(0, attempt - 1), 3_600_000)
  return Math.round(step / 2 + random() * (step / 2))
}
