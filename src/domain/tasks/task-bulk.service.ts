import { z } from 'zod'
import { ConflictError, ValidationError, validationErrorFromDetails, type ErrorDetail } from '../errors'
import type { Principal } from '../tokens/token'
import { createTaskSchema, taskRowToTask, type CreateTaskInput, type Task } from './task'
import * as repo from './task.repository'
import { enqueue, newTaskRow, sameRequest, scopedKey, validateDependencies, validatePayload, type TaskDeps } from './task.service'

export const MAX_BULK_TASKS = 1000

export const bulkCreateSchema = z.strictObject({
  tasks: z
    .array(createTaskSchema, { error: 'tasks must be an array of tasks' })
    .min(1, 'tasks must hold at least one task')
    .max(MAX_BULK_TASKS, `tasks must hold at most ${MAX_BULK_TASKS} tasks`),
})
export type BulkCreateInput = z.infer<typeof bulkCreateSchema>

/**
 * Creates every task or none: each payload is checked first (one 400 names
 * the index and field of every bad entry), then one INSERT stores them all.
 * An Idempotency-Key covers the batch: a retry answers the tasks the first
 * request created, in the same order.
 */
export async function createTasks(
  deps: TaskDeps,
  who: Principal,
  inputs: CreateTaskInput[],
  idempotencyKey?: string,
  requestId?: string,
): Promise<{ tasks: Task[]; created: boolean }> {
  await validateAll(deps, who, inputs)
  // A newline cannot be in a header value, so no single create's key can take one of these.
  const keys = inputs.map((_, i) => (idempotencyKey === undefined ? null : `${scopedKey(who, idempotencyKey)}\n${i}`))
  const changes = await repo.insertTasks(
    deps.db,
    inputs.map((input, i) => newTaskRow(input, who, keys[i]!, requestId)),
  )
  if (changes.length === inputs.length) {
    await enqueue(deps, changes)
    return { tasks: changes.map(taskRowToTask), created: true }
  }
  if (changes.length === 0 && idempotencyKey !== undefined) return { tasks: await replay(deps, inputs, keys as string[], idempotencyKey), created: false }
  throw new ConflictError(`Idempotency-Key "${idempotencyKey}" is in use by another batch being created; retry`, 'idempotency_conflict')
}

async function validateAll(deps: TaskDeps, who: Principal, inputs: CreateTaskInput[]): Promise<void> {
  const details: ErrorDetail[] = []
  for (const [i, input] of inputs.entries()) details.push(...(await entryProblems(deps, who, input, i)))
  if (details.length) throw validationErrorFromDetails(details)
}

/** An entry's payload (its type's schema) and dependencies, checked as a single create would be, each problem under tasks.<i>. */
async function entryProblems(deps: TaskDeps, who: Principal, input: CreateTaskInput, i: number): Promise<ErrorDetail[]> {
  try {
    await validatePayload(deps, input)
    await validateDependencies(deps, who, input)
    return []
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e
    return e.details.map((d) => ({ ...d, path: `tasks.${i}.${d.path}` }))
  }
}

/**
 * When the batch's schema refused some entries, their problems and those of
 * the other entries that later checks find: one 400 names every bad entry,
 * not only those the schema saw, by entry and, within one, as a single
 * create would order them.
 */
export async function everyBadEntry(deps: TaskDeps, who: Principal, body: unknown, refused: ErrorDetail[]): Promise<ErrorDetail[]> {
  const entries = (body as { tasks?: unknown })?.tasks
  if (!Array.isArray(entries) || entries.length > MAX_BULK_TASKS) return refused
  const details = [...refused]
  for (const [i, entry] of entries.entries()) {
    const parsed = createTaskSchema.safeParse(entry)
    if (parsed.success) details.push(...(await entryProblems(deps, who, parsed.data, i)))
  }
  // Stable: an entry's own problems keep their order (a problem of the batch itself, with no entry, comes first).
  const entryOf = (d: ErrorDetail) => Number(/^tasks\.(\d+)/.exec(d.path)?.[1] ?? -1)
  return details.sort((a, b) => entryOf(a) - entryOf(b))
}

/** The batch an earlier request with this key created, unless this one asks for something else. */
async function replay(deps: TaskDeps, inputs: CreateTaskInput[], keys: string[], shownKey: string): Promise<Task[]> {
  const rows = new Map((await repo.findTasksByIdempotencyKeys(deps.db, keys)).map((r) => [r.idempotency_key, r]))
  return inputs.map((input, i) => {
    const row = rows.get(keys[i]!)
    if (!row || !sameRequest(row, input)) {
      throw new ConflictError(`Idempotency-Key "${shownKey}" was already used for a different batch`, 'idempotency_conflict')
    }
    return taskRowToTask(row)
  })
}
