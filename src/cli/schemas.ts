import { z } from 'zod'
import { isTerminal, taskStatuses } from '../client/task-status'

/**
 * What the CLI needs from the API's answers. Objects are loose so a newer
 * server that adds fields still works; a wrong server (URL pointing at
 * something else) fails here with a clear message instead of printing undefined.
 */
export const taskSchema = z.looseObject({
  id: z.number(),
  title: z.string(),
  type: z.string(),
  status: z.string(),
  progress: z.number(),
  attempts: z.number(),
  max_attempts: z.number(),
  seq: z.number(),
  result: z.unknown(),
  error: z.string().nullable(),
  created_at: z.string(),
})
export type Task = z.infer<typeof taskSchema>

export const taskListSchema = z.object({ results: z.array(taskSchema), next: z.string().nullable() })
export type TaskList = z.infer<typeof taskListSchema>

export const taskEventSchema = z.looseObject({
  task_id: z.number(),
  seq: z.number(),
  status: z.string(),
  progress: z.number(),
  at: z.string(),
  detail: z.unknown(),
})
export type TaskEvent = z.infer<typeof taskEventSchema>

// A server from before paging sent no `next`: its one answer was the whole history.
export const eventListSchema = z.object({ task_id: z.number(), results: z.array(taskEventSchema), next: z.string().nullable().default(null) })
export type EventList = z.infer<typeof eventListSchema>

export type { ErrorDetail } from '../client/api-error'

/** Messages on /ws/tasks/:id/; anything else (a future kind) is ignored by the watcher. */
export const socketMessageSchema = z.discriminatedUnion('kind', [
  z.looseObject({
    kind: z.literal('snapshot'),
    task_id: z.number(),
    seq: z.number(),
    status: z.string(),
    progress: z.number(),
    task: taskSchema,
  }),
  z.looseObject({
    kind: z.literal('change'),
    task_id: z.number(),
    seq: z.number(),
    status: z.string(),
    progress: z.number(),
    detail: z.unknown(),
    deleted: z.boolean().optional(),
  }),
  z.looseObject({ kind: z.literal('pong') }),
])
export type SocketMessage = z.infer<typeof socketMessageSchema>

// The server's own rules, so a status cannot drift between server and CLI.
export { taskStatuses, isTerminal as isTerminalStatus }
