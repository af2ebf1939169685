/**
 * The one message of the event path, and every conversion to and from it: a
 * change statement's rows, a task_events row read back, the events stream's
 * fields, and a deletion. The message is what sockets receive, what
 * GET /api/tasks/:id/events/ answers, and the JSON inside a stream entry.
 */
import { z } from 'zod'
import type { Selectable } from 'kysely'
import type { Json, TaskEvents } from '../../infra/database'
import { taskStatusSchema, type TaskRow } from '../tasks/task'
import type { MetricLabel } from '../tasks/task-transitions'

const timestamp = z.iso.datetime({ offset: true })

/** One change of a task: GET /api/tasks/:id/events/ and the WebSocket "change" message. */
export const taskEventSchema = z
  .object({
    kind: z.literal('change'),
    task_id: z.number().int().positive(),
    owner_id: z.number().int().nullable().meta({ description: 'the API token that owns the task; null with AUTH=off' }),
    seq: z.number().int().positive(),
    status: taskStatusSchema,
    progress: z.number().min(0).max(1),
    at: timestamp,
    cursor: z.number().int().positive().meta({ description: 'task_events id: where the all-tasks feed resumes (?after=)' }),
    detail: z.unknown().meta({ description: 'what changed besides status and progress (attempt, result, error, retry time, title), or null' }),
    deleted: z.literal(true).optional().meta({ description: 'only on the last message for a deleted task' }),
  })
  .meta({ id: 'TaskEvent' })
export type TaskEventMessage = z.output<typeof taskEventSchema>

/**
 * What a change statement returns beside the task's columns: its task_events
 * row's id and detail, when Postgres answered (wall-clock ms), which the
 * events stream carries so the hubs can tell how late they deliver, and the
 * metric label of the transition that made it, which the metrics count.
 */
export type EventColumns = { event_id: number; detail: Json | null; stored_at: number; metric: MetricLabel | null }
/** A task row just changed, with the event written in the same statement. */
export type TaskChange = TaskRow & EventColumns
/** What streaming a change reads: its message's fields, the metrics' task type and the commit time. */
export type StreamedChange = Pick<TaskChange, 'id' | 'owner_id' | 'type' | 'seq' | 'status' | 'progress' | 'updated_at'> & EventColumns

/** A task_events row as the event reads select it, with its task's owner. */
export type EventRow = Pick<Selectable<TaskEvents>, 'id' | 'task_id' | 'seq' | 'status' | 'progress' | 'at' | 'detail'> & Pick<TaskRow, 'owner_id'>

/** A message on its way to the stream, with when its producer saw it committed (wall-clock ms). */
export interface OutgoingEvent {
  message: TaskEventMessage
  storedAt: number
}

/** A message read from the stream (or from Postgres), with what routing and ordering need decoded. */
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

export const changeToOutgoing = (c: StreamedChange): OutgoingEvent => ({ message: changeToEvent(c), storedAt: c.stored_at })

export function eventRowToMessage(r: EventRow): TaskEventMessage {
  return {
    kind: 'change',
    task_id: r.task_id,
    owner_id: r.owner_id,
    seq: r.seq,
    status: r.status,
    progress: r.progress,
    at: r.at.toISOString(),
    cursor: r.id,
    detail: r.detail,
  }
}

/**
 * The last message of a deleted task: the next seq, and a cursor taken from
 * task_events' id sequence when its history was deleted, so it orders and
 * resumes like any other event although no row keeps it.
 */
export function deletionEvent(task: TaskRow, gone: { cursor: number; at: Date }): TaskEventMessage {
  return {
    kind: 'change',
    task_id: task.id,
    owner_id: task.owner_id,
    seq: task.seq + 1,
    status: task.status,
    progress: task.progress,
    at: gone.at.toISOString(),
    cursor: gone.cursor,
    detail: { reason: 'deleted' },
    deleted: true,
  }
}

/** Whether a running handler must stop: workers hear of it on the cancels channel rather than by reading every event. */
export const stopsItsRun = (m: TaskEventMessage) => m.status === 'CANCELLED' || m.deleted === true

export const messageToStreamed = (m: TaskEventMessage): StreamedEvent => ({
  taskId: m.task_id,
  ownerId: m.owner_id,
  seq: m.seq,
  cursor: m.cursor,
  json: JSON.stringify(m),
  storedAt: null,
})

/**
 * Stream entries carry what routing and ordering need (task id, seq, cursor)
 * and the commit time beside the message JSON, which is encoded once here and
 * sent as is.
 */
export function eventToFields({ message: e, storedAt }: OutgoingEvent): string[] {
  return ['t', String(e.task_id), 's', String(e.seq), 'c', String(e.cursor), 'o', String(e.owner_id ?? ''), 'w', storedAt.toFixed(3), 'd', JSON.stringify(e)]
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
      case 't':
        taskId = Number(String(value))
        break
      case 's':
        seq = Number(String(value))
        break
      case 'c':
        cursor = Number(String(value))
        break
      case 'o':
        ownerId = value.length ? Number(String(value)) : null
        break
      case 'w':
        storedAt = value.length ? Number(String(value)) : null
        break
      case 'd':
        data = value
        break
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
