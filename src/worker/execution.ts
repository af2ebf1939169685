import type { Db } from '../infra/db'
import { storablePrefix, toStorableJson } from '../infra/jsonb'
import { coerceError, type Logger } from '../infra/logger'
import type { Metrics } from '../infra/metrics'
import { failureKindOf, type HandlerModule } from '../handlers/handler'
import { nextStatusAfterFailure, retryDelayMs } from '../domain/tasks/task'
import type { StreamedChange, TaskChange } from '../domain/task-events/task-event'
import * as runs from '../domain/tasks/task-runs.repository'
import { isDataError, type Outbox } from './outbox'
import type { LeaseKeeper } from './lease-keeper'
import { createProgressCoalescer, type ProgressCoalescer } from './progress-coalescer'
import { AbortReason, type Outcome, type Run, type RunKey } from './run'

/**
 * At most one stored progress report per task this often: every report is a
 * history row and a message to each subscriber, and a handler reporting after
 * every item of a long loop would otherwise write thousands.
 */
const PROGRESS_INTERVAL_MS = 100

export interface ExecutionOptions {
  db: Db
  outbox: Outbox
  logger: Logger
  metrics?: Metrics
  retryBaseMs: number
  defaultTimeoutMs: number
  /** Task type -> handler: the built-in types and the loaded handler modules. */
  handlers: HandlerModule
  leases: LeaseKeeper
}

/** Rejects when the signal aborts, so a handler that ignores its signal cannot hold the slot. */
const whenAborted = (signal: AbortSignal) => new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))

/**
 * One claimed attempt, from its handler to its stored outcome: the handler
 * runs under a timeout and the run's abort signal, and what it came to
 * (completed, retried after a backoff, failed for good, handed back) goes to
 * the outbox.
 */
export class Execution {
  constructor(private readonly o: ExecutionOptions) {}

  async execute(task: TaskChange, run: Run): Promise<void> {
    // The creating request's id: one request can be followed from the API's log into this one.
    const log = this.o.logger.child({ taskId: task.id, attempt: run.key.attempt, type: task.type, requestId: task.request_id ?? undefined })
    this.o.metrics?.observeQueueWait(task.queue, task.type, (Date.now() - task.run_after.getTime()) / 1000)
    const started = performance.now()
    const outcome = await this.runHandler(task, run, log)
    // Before the outcome, so the history stays in order; completion stores progress 1, superseding a kept value.
    await run.progress.close({ flush: outcome.kind !== 'completed' })
    const ranFor = (performance.now() - started) / 1000
    let change: StreamedChange | undefined
    try {
      change = await this.o.outbox.store(run, outcome).catch((e) => {
        if (!isDataError(e)) throw e
        // Postgres refused what the handler produced: the task fails for good rather than retrying the write forever.
        log.error('could not store the outcome; failing the task', { error: coerceError(e).message })
        return this.o.outbox.store(run, failForGood(`could not store the outcome: ${storablePrefix(coerceError(e).message, 500)}`))
      })
    } catch (e) {
      return log.error('gave up recording outcome; the task will be recovered', { error: coerceError(e).message })
    }
    this.o.metrics?.observeRun(task.type, change?.status === 'COMPLETED' ? 'completed' : change ? 'failed' : 'aborted', ranFor)
  }

  /** A run's progress writes: a write that finds the run no longer held means it was cancelled. */
  progressFor(key: RunKey, controller: AbortController): ProgressCoalescer {
    const write = async ({ fraction, message }: { fraction: number; message?: string }) => {
      const change = await runs.recordProgress(this.o.db, key, fraction, message)
      if (!change) controller.abort(new AbortReason('cancelled'))
      await this.o.outbox.publish([change])
    }
    const onError = (e: unknown) => this.o.logger.warn('could not record progress', { taskId: key.id, error: coerceError(e).message })
    return createProgressCoalescer(write, { intervalMs: PROGRESS_INTERVAL_MS, onError })
  }

  private async runHandler(task: TaskChange, run: Run, log: Logger): Promise<Outcome> {
    const handler = Object.hasOwn(this.o.handlers, task.type) ? this.o.handlers[task.type] : undefined
    if (!handler) return failForGood(`no handler for task type "${task.type}"`)
    const payload = handler.payload.safeParse(task.payload)
    if (!payload.success) return failForGood(`invalid payload: ${payload.error.issues[0]?.message}`)
    const { signal } = run.controller
    const timeoutMs = task.timeout_ms ?? handler.timeoutMs ?? this.o.defaultTimeoutMs
    const timer = setTimeout(() => run.controller.abort(new AbortReason('timeout', `timed out after ${timeoutMs} ms`)), timeoutMs)
    try {
      const work = handler.run(payload.data, {
        taskId: task.id,
        attempt: run.key.attempt,
        signal,
        logger: log,
        progress: (fraction, message) =>
          Number.isFinite(fraction) ? run.progress.report(Math.min(1, Math.max(0, fraction)), progressMessage(message)) : Promise.resolve(),
        heartbeat: () => this.heartbeat(run),
      })
      const result = await Promise.race([work, whenAborted(signal)])
      if (signal.aborted) return this.afterAbort(task, run)
      const stored = toStorableJson(result)
      if (!stored.ok) return failForGood(`the handler's result is not JSON: ${stored.error}`)
      log.info('task completed')
      return { kind: 'completed', resultJson: stored.json }
    } catch (e) {
      if (signal.aborted) return this.afterAbort(task, run)
      return this.failure(task, run, coerceError(e), log, failureKindOf(e))
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * A failed attempt: retried after a backoff (or the delay the error asks
   * for, if longer) while attempts remain, else FAILED; a PermanentError
   * fails the task at once.
   */
  private failure(task: TaskChange, run: Run, thrown: Error | string, log: Logger, how: ReturnType<typeof failureKindOf> = { permanent: false }): Outcome {
    const next = how.permanent ? 'FAILED' : nextStatusAfterFailure(run.key.attempt, task.max_attempts)
    const error = storablePrefix(typeof thrown === 'string' ? thrown : thrown.message, 2000)
    const stack = typeof thrown === 'string' || !thrown.stack ? undefined : storablePrefix(thrown.stack, 8000)
    // The last failure is what an operator must see, with where it came from; a retry is routine.
    if (next === 'FAILED') log.warn('task failed', { error, stack })
    else log.info('attempt failed, will retry', { error })
    const backoff = retryDelayMs(run.key.attempt, this.o.retryBaseMs)
    const retryInMs = !how.permanent && how.retryAfterMs !== undefined ? Math.max(backoff, how.retryAfterMs) : backoff
    return { kind: 'failed', error, next, retryInMs, stack }
  }

  /** ctx.heartbeat(): yields so timers and the cancels channel get their turn, renews a lease a third old, and throws once aborted. */
  private async heartbeat(run: Run): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 0))
    const { signal } = run.controller
    if (!signal.aborted && performance.now() - run.renewedAt >= this.o.leases.renewEveryMs) await this.o.leases.renew([run])
    signal.throwIfAborted()
  }

  /**
   * Cancelled: the API already stored CANCELLED. Shutdown: hand the task back
   * to another worker. Timeout: a failed attempt like any other.
   */
  private afterAbort(task: TaskChange, run: Run): Outcome {
    const reason: unknown = run.controller.signal.reason
    if (!(reason instanceof AbortReason) || reason.kind === 'cancelled') return { kind: 'cancelled' }
    if (reason.kind === 'shutdown') return { kind: 'handed-back' }
    return this.failure(task, run, reason.message, this.o.logger.child({ taskId: task.id }))
  }
}

/** Progress messages are stored in the history: a long one is cut, not refused. */
const progressMessage = (m: unknown) => (typeof m === 'string' ? storablePrefix(m, 500) : undefined)

/** A task that can never run (no handler, a payload its handler refuses): FAILED at once, without retries. */
const failForGood = (error: string): Outcome => ({ kind: 'failed', error, next: 'FAILED', retryInMs: 0 })
