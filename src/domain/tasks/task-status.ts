/**
 * A task's statuses and the rules the clients need too: which end a task,
 * which can be cancelled or retried. Only type imports, so the dashboard's
 * bundle and the typed client read these rules from here, not from a copy.
 */
import type { TaskStatus } from '../../infra/database'

export type { TaskStatus }

/** The largest seq (and after_seq) there can be: a Postgres int. */
export const maxSeq = 2_147_483_647

export const taskStatuses = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const satisfies readonly TaskStatus[]

export const terminalStatuses: readonly TaskStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED']
export const cancellableStatuses: readonly TaskStatus[] = ['PENDING', 'PROCESSING']
export const retryableStatuses: readonly TaskStatus[] = ['FAILED', 'CANCELLED']

// Strings, not TaskStatus: a client reads statuses from JSON and must not need a cast to ask.
const among = (list: readonly TaskStatus[]) => (s: string) => (list as readonly string[]).includes(s)
export const isTerminal: (s: string) => boolean = among(terminalStatuses)
export const canCancel: (s: string) => boolean = among(cancellableStatuses)
export const canRetry: (s: string) => boolean = among(retryableStatuses)
