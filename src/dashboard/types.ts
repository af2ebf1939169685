// Type imports are erased by Bun's bundler, so the API's own definitions
// describe what the page receives without shipping zod or kysely.
import type { Task, TaskStatus } from '../domain/tasks/task'
import type { TaskEventMessage } from '../domain/task-events/task-event'

export type { Task, TaskStatus, TaskEventMessage }

// The server's rules from an import-free file, not a copy: task.ts itself would bundle zod into the page.
export { canCancel, canRetry, taskStatuses as statuses } from '../client/task-status'

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
