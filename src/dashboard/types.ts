// The typed client's own declarations of what the API sends: plain types,
// so the page's bundle carries neither zod nor kysely nor any server module.
import type { Queue, Schedule, Task, TaskEvent, TaskEventPage, TaskPage, TaskStatus, TaskTypeInfo, TaskTypeList } from '../client/types'

export type { Queue, Schedule, Task, TaskPage, TaskStatus, TaskTypeInfo, TaskTypeList }
export type TaskEventMessage = TaskEvent
export type EventList = TaskEventPage

export { canCancel, canRetry, taskStatuses as statuses } from '../client/task-status'
