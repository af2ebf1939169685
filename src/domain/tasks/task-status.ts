/**
 * A task's statuses and the rules the clients need too: which end a task,
 * which can be cancelled or retried. They are written once, in the client's
 * import-free module (src/client/task-status.ts), which the server reads as
 * well; src/client/types.test.ts holds the client's TaskStatus equal to the
 * database's.
 */
import type { TaskStatus } from '../../infra/database'

export type { TaskStatus }
export { canCancel, canRetry, cancellableStatuses, isTerminal, retryableStatuses, taskStatuses, terminalStatuses } from '../../client/task-status'

/** The largest seq (and after_seq) there can be: a Postgres int. */
export const maxSeq = 2_147_483_647
