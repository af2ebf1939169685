import type { RunKey } from '../domain/tasks/task-runs.repository'
import type { ProgressCoalescer } from './progress-coalescer'

export type { RunKey }

/** Why a running handler's signal was aborted; decides what is recorded afterwards. */
export class AbortReason extends Error {
  constructor(
    readonly kind: 'cancelled' | 'shutdown' | 'timeout',
    message = kind === 'cancelled' ? 'task was cancelled' : 'worker is shutting down',
  ) {
    super(message)
  }
}

/** One attempt of a task in this worker's hands, from its claim until its outcome is streamed. */
export interface Run {
  key: RunKey
  controller: AbortController
  done: Promise<void>
  progress: ProgressCoalescer
  /** When its lease was last renewed (performance.now()). */
  renewedAt: number
}

/**
 * What an attempt came to, decided by execution and stored by the outbox.
 * Cancelled stores nothing: the API already stored CANCELLED.
 */
export type Outcome =
  /** The result as storable JSON text (infra/jsonb.ts). */
  | { kind: 'completed'; resultJson: string }
  | { kind: 'failed'; error: string; next: 'PENDING' | 'FAILED'; retryInMs: number; stack?: string }
  | { kind: 'handed-back' }
  | { kind: 'cancelled' }
