// Types only: `import type` is erased by Bun's bundler, so the API's own
// definitions describe what the page receives without shipping zod or kysely.
import type { Task, TaskStatus } from '../domain/tasks/task'
import type { TaskEventMessage } from '../domain/task-events/task-event'

export type { Task, TaskStatus, TaskEventMessage }

/** Copied rather than imported: a value import would bundle the server's module (and zod) into the page. */
export const statuses = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const satisfies readonly TaskStatus[]

export const canCancel = (s: TaskStatus) => s === 'PENDING' || s === 'PROCESSING'
export const canRetry = (s: TaskStatus) => s === 'FAILED' || s === 'CANCELLED'

/** What the all-tasks feed sends. */
export type FeedMessage = { kind: 'hello'; cursor: number } | { kind: 'pong' } | TaskEventMessage

export interface TaskPage {
  results: Task[]
  next: string | null
}

export interface EventList {
  task_id: number
  results: TaskEventMessage[]
  next: string | null
}
