/**
 * Glossary
 * - task: a row in `tasks`, the source of truth for one unit of work.
 * - job: an entry on the jobs stream saying "task N may be due"; it carries only
 *   the id, so a stale or duplicate job is harmless: the worker re-reads the row
 *   and its guarded UPDATE decides whether there is anything to run.
 * - attempt: one run of a task's handler; `attempts` counts them.
 * - lease: (locked_by, locked_until) on a PROCESSING task; a live worker keeps
 *   extending it, an expired one means its worker died and the attempt is lost.
 * - event: a row in `task_events` for every change of a task (its `seq` bumps),
 *   also XADDed to the events stream, which every API instance fans out to
 *   sockets. Its id is the cursor a client resumes from.
 */
import { z } from 'zod'
import type { TaskStatus } from '../infra/database'

export const jobMessageSchema = z.object({ task_id: z.coerce.number().int().positive() })
export type JobMessage = z.infer<typeof jobMessageSchema>

/** One change of one task, as stored in task_events and sent to sockets. */
export interface TaskEventMessage {
  kind: 'change'
  task_id: number
  /** The API token that owns the task (null when AUTH=off): routes the event to its owner's feed. */
  owner_id: number | null
  seq: number
  status: TaskStatus
  progress: number
  at: string
  /** task_events.id: where the all-tasks feed resumes from (?after=). */
  cursor: number
  /** What changed besides status/progress: attempt, result, error, retry time, title. */
  detail: unknown
  /** Only on the last message for a deleted task. */
  deleted?: true
}

/** An event on its way to the stream, with when its producer saw it committed (wall-clock ms). */
export interface OutgoingEvent {
  message: TaskEventMessage
  storedAt: number
}

/**
 * Stream entries carry what routing and ordering need (task id, seq, cursor)
 * and the commit time beside the message JSON, which is encoded once here and
 * sent as is.
 */
export function eventToFields({ message: e, storedAt }: OutgoingEvent): string[] {
  return ['t', String(e.task_id), 's', String(e.seq), 'c', String(e.cursor), 'o', String(e.owner_id ?? ''), 'w', storedAt.toFixed(3), 'd', JSON.stringify(e)]
}

export interface StreamedEvent {
  taskId: number
  ownerId: number | null
  seq: number
  cursor: number
  json: string
  /** When the producer saw it committed (wall-clock ms); null for events read back from Postgres. */
  storedAt: number | null
}

export function fieldsToEvent(fields: string[]): StreamedEvent | null {
  const f = fieldsToRecord(fields)
  const taskId = Number(f.t)
  const seq = Number(f.s)
  if (!Number.isSafeInteger(taskId) || !Number.isSafeInteger(seq) || !f.d) return null
  const storedAt = f.w ? Number(f.w) : Number.NaN
  return { taskId, ownerId: f.o ? Number(f.o) : null, seq, cursor: Number(f.c ?? 0), json: f.d, storedAt: Number.isFinite(storedAt) ? storedAt : null }
}

/** Reads ioredis' flat [k1, v1, k2, v2] field list. */
export function fieldsToRecord(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!
  return out
}
