/**
 * What a handler module is written against: `import { defineHandler } from
 * 'taskline'` resolves here (through index.ts at the package root). It
 * imports nothing but zod's types, so a user's handler file loads the same
 * way from source, from `bunx taskline` and from the compiled binary.
 */
import type { z } from 'zod'

/** The log lines a handler writes carry its task id, attempt and type. */
export interface HandlerLogger {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
}

/** What a running handler may use besides its payload. */
export interface HandlerContext {
  taskId: number
  /** 1 for the first run; a handler can use (taskId, attempt) to stay idempotent. */
  attempt: number
  /** Aborted when the task is cancelled, times out, or the worker shuts down past its grace. */
  signal: AbortSignal
  /**
   * Records a fraction in 0..1, with an optional message, and pushes it to
   * subscribers. At most one report per 100 ms is stored (each is a history
   * row and a message), the latest winning; call it as often as is
   * convenient. A completed task's progress is 1 whatever was reported last.
   */
  progress(fraction: number, message?: string): Promise<void>
  /**
   * For long CPU-bound work that would hold the event loop: lets the worker
   * renew this run's lease (so it is not taken for dead) and hear a cancel.
   * Throws the abort reason once the run is cancelled or timed out.
   */
  heartbeat(): Promise<void>
  logger: HandlerLogger
}

/** Settings of the worker that the built-in types read (handlers/registry.ts). */
export interface HandlerSettings {
  demoWorkMs: number
  http: HttpTaskSettings
}

export interface HttpTaskSettings {
  /** Exact origins (scheme://host[:port]) the http type may call; empty disables the type. */
  allowedOrigins: readonly string[]
  /** Signs each request (X-Taskline-Signature) when set. */
  signingSecret?: string
}

/** What the API knows of a task type: enough to check a payload, no run code. */
export interface TaskType<S extends z.ZodType = z.ZodType> {
  /** Validates the payload at POST time and again before each run. */
  payload: S
  /** Default limit on one attempt for this type; a task's timeout_ms overrides it. */
  timeoutMs?: number
}

export interface TaskHandler<S extends z.ZodType = z.ZodType> extends TaskType<S> {
  run(payload: z.output<S>, ctx: HandlerContext): Promise<unknown>
}

/** A handler module's default export: task type name -> handler. */
export type HandlerModule = Record<string, TaskHandler>

/** Types a handler's payload from its schema; returns it unchanged. */
export function defineHandler<S extends z.ZodType>(handler: TaskHandler<S>): TaskHandler<S> {
  return handler
}

/**
 * Handler modules may be loaded against another copy of this file (a
 * compiled worker imports the user's `taskline`), so errors are told apart by
 * a registry-wide symbol, not by instanceof.
 */
const kind = Symbol.for('taskline.error-kind')

/** Fails the task at once: no further attempts, whatever max_attempts allows. */
export class PermanentError extends Error {
  readonly [kind] = 'permanent'
  override name = 'PermanentError'
}

/** A failed attempt that should be tried again no sooner than retryAfterMs (when attempts remain). */
export class RetryableError extends Error {
  readonly [kind] = 'retryable'
  override name = 'RetryableError'
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message)
  }
}

/** How the worker treats a thrown error: the failure policy reads it. */
export function failureKindOf(e: unknown): { permanent: true } | { permanent: false; retryAfterMs?: number } {
  const k = typeof e === 'object' && e !== null ? (e as Record<symbol, unknown>)[kind] : undefined
  if (k === 'permanent') return { permanent: true }
  const after = k === 'retryable' ? (e as { retryAfterMs?: unknown }).retryAfterMs : undefined
  return typeof after === 'number' && Number.isFinite(after) && after >= 0 ? { permanent: false, retryAfterMs: after } : { permanent: false }
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
