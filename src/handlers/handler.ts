import type { z } from 'zod'
import type { Logger } from '../infra/logger'

/** What a running handler may use besides its payload. */
export interface HandlerContext {
  taskId: number
  /** 1 for the first run; a handler can use (taskId, attempt) to stay idempotent. */
  attempt: number
  /** Aborted when the task is cancelled, times out, or the worker shuts down past its grace. */
  signal: AbortSignal
  /**
   * Records a fraction in 0..1 and pushes it to subscribers. At most one
   * report per 100 ms is stored (each is a history row and a message), the
   * latest winning; call it as often as is convenient. A completed task's
   * progress is 1 whatever was reported last.
   */
  progress(fraction: number): Promise<void>
  logger: Logger
  settings: HandlerSettings
}

export interface HandlerSettings {
  demoWorkMs: number
}

/** What the catalogue knows of a task type: enough to check a payload, no run code. */
export interface TaskType<S extends z.ZodType = z.ZodType> {
  /** Validates the payload at POST time and again before each run. */
  payload: S
  /** Default limit on one attempt for this type; a task's timeout_ms overrides it. */
  timeoutMs?: number
}

export interface TaskHandler<S extends z.ZodType = z.ZodType> extends TaskType<S> {
  run(payload: z.infer<S>, ctx: HandlerContext): Promise<unknown>
}

export function defineHandler<S extends z.ZodType>(handler: TaskHandler<S>): TaskHandler<S> {
  return handler
}

/** Resolves after ms, or rejects as soon as the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    // A timer never fires sooner than about a millisecond: a zero-length step would add that to every run.
    if (ms <= 0) return queueMicrotask(resolve)
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal!.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
