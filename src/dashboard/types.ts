// The typed client's own declarations of what the API sends: plain types,
// so the page's bundle carries neither zod nor kysely nor any server module.
import type { Queue, Schedule, Stats, Task, TaskEvent, TaskEventPage, TaskPage, TaskStatus, TaskTypeInfo, TaskTypeList, Worker } from '../client/types'

export type { Queue, Schedule, Stats, Task, TaskPage, TaskStatus, TaskTypeInfo, TaskTypeList, Worker }
export type TaskEventMessage = TaskEvent
export type EventList = TaskEventPage

export { canCancel, canRetry, taskStatuses as statuses } from '../client/task-status'
