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
  /** The message as sent to sockets. */
  readonly json: string
  /** When the producer saw it committed (wall-clock ms); null for events read back from Postgres. */
  storedAt: number | null
}

/**
 * Reads an events-stream entry, as strings or as the raw bytes of
 * xreadBuffer. The API reads every event, while most go to no socket (a busy
 * create path has none watching): from raw bytes, only the short routing
 * fields are decoded up front, and the message JSON when first asked for.
 */
export function fieldsToEvent(fields: readonly (string | Buffer)[]): StreamedEvent | null {
  let taskId = Number.NaN
  let seq = Number.NaN
  let cursor = 0
  let ownerId: number | null = null
  let storedAt: number | null = null
  let data: string | Buffer | undefined
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1]!
    switch (String(fields[i])) {
      case 't': taskId = Number(String(value)); break
      case 's': seq = Number(String(value)); break
      case 'c': cursor = Number(String(value)); break
      case 'o': ownerId = value.length ? Number(String(value)) : null; break
      case 'w': storedAt = value.length ? Number(String(value)) : null; break
      case 'd': data = value; break
    }
  }
  if (!Number.isSafeInteger(taskId) || !Number.isSafeInteger(seq) || !data?.length) return null
  if (storedAt !== null && !Number.isFinite(storedAt)) storedAt = null
  let json = typeof data === 'string' ? data : null
  return {
    taskId,
    ownerId,
    seq,
    cursor: Number.isFinite(cursor) ? cursor : 0,
    get json() {
      return (json ??= String(data))
    },
    storedAt,
  }
}

/** Reads ioredis' flat [k1, v1, k2, v2] field list. */
export function fieldsToRecord(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!
  return out
}
