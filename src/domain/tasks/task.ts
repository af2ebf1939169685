import { z } from 'zod'
import type { Selectable } from 'kysely'
import type { TaskStatus, Tasks } from '../../infra/database'

export type { TaskStatus }
export type TaskRow = Selectable<Tasks>

export const taskStatuses = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const satisfies readonly TaskStatus[]
export const taskStatusSchema = z.enum(taskStatuses)

const title = z
  .string({ error: (iss) => (iss.input === undefined ? 'title is required' : 'title must be a string') })
  .trim()
  .min(1, 'title must not be empty')
  .max(200, 'title must be at most 200 characters')
  // Postgres text cannot hold NUL; without this check the INSERT fails as a 500.
  .refine((s) => !s.includes('\0'), 'title must not contain NUL characters')

export const createTaskSchema = z.strictObject({
  title,
  type: z.string().min(1).max(100).default('demo'),
  payload: z.record(z.string(), z.unknown(), { error: 'payload must be a JSON object' }).default({}),
  max_attempts: z.number().int().min(1).max(100).default(3),
  /** Limit on one attempt; past it the handler is aborted and the attempt counts as failed. */
  timeout_ms: z.number().int().min(1).max(86_400_000).optional(),
})
export type CreateTaskInput = z.infer<typeof createTaskSchema>

export const updateTaskSchema = z.strictObject({ title })
export type UpdateTaskInput = z.infer<typeof updateTaskSchema>

/**
 * A positive integer written in plain decimal digits. z.coerce.number would also
 * take "1e3", "0x10" and " 1", so /tasks/1e3 would answer for task 1000.
 */
const positiveIntString = (name: string) =>
  z
    .string({ error: `${name} must be a positive integer` })
    .regex(/^[1-9][0-9]*$/, `${name} must be a positive integer`)
    .transform(Number)
    .refine(Number.isSafeInteger, `${name} is too large`)

export const taskIdSchema = positiveIntString('id')

export const listTasksQuerySchema = z.strictObject({
  status: taskStatusSchema.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: positiveIntString('cursor').optional(),
})
export type ListTasksQuery = z.infer<typeof listTasksQuerySchema>

/** The task as clients see it: internal bookkeeping (lease, outbox) stays inside. */
export function taskRowToTask(row: TaskRow) {
  return {
    id: row.id,
    title: row.title,
    type: row.type,
    payload: row.payload,
    status: row.status,
    attempts: row.attempts,
    max_attempts: row.max_attempts,
    timeout_ms: row.timeout_ms,
    progress: row.progress,
    result: row.result,
    error: row.error,
    seq: row.seq,
    run_after: row.status === 'PENDING' ? row.run_after.toISOString() : null,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    started_at: row.started_at?.toISOString() ?? null,
    finished_at: row.finished_at?.toISOString() ?? null,
  }
}
export type Task = ReturnType<typeof taskRowToTask>

export const terminalStatuses: readonly TaskStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED']
export const cancellableStatuses: readonly TaskStatus[] = ['PENDING', 'PROCESSING']
export const retryableStatuses: readonly TaskStatus[] = ['FAILED', 'CANCELLED']

export const isTerminal = (s: TaskStatus) => terminalStatuses.includes(s)
export const canCancel = (s: TaskStatus) => cancellableStatuses.includes(s)
export const canRetry = (s: TaskStatus) => retryableStatuses.includes(s)

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
