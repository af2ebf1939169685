/**
 * A task's statuses and the rules clients act on: which end a task, which can
 * be cancelled or retried. Written here, import-free, so the client needs no
 * server module; the server re-exports them (domain/tasks/task-status.ts).
 */
import type { TaskStatus } from './types'

export type { TaskStatus }

export const taskStatuses = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const satisfies readonly TaskStatus[]

export const terminalStatuses: readonly TaskStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED']
export const cancellableStatuses: readonly TaskStatus[] = ['PENDING', 'PROCESSING']
export const retryableStatuses: readonly TaskStatus[] = ['FAILED', 'CANCELLED']

// Strings, not TaskStatus: a client reads statuses from JSON and must not need a cast to ask.
const among = (list: readonly TaskStatus[]) => (s: string) => (list as readonly string[]).includes(s)
export const isTerminal: (s: string) => boolean = among(terminalStatuses)
export const canCancel: (s: string) => boolean = among(cancellableStatuses)
export const canRetry: (s: string) => boolean = among(retryableStatuses)
