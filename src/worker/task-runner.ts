import type { Db } from '../infra/db'
import { coerceError, type Logger } from '../infra/logger'
import { handlers } from '../handlers/registry'
import type { HandlerSettings } from '../handlers/handler'
import { jobMessageSchema } from '../domain/messages'
import { publishChanges, type StreamDeps } from '../domain/streams'
import { nextStatusAfterFailure, retryDelayMs } from '../domain/tasks/task'
import type { StreamedChange, TaskChange } from '../domain/tasks/task.repository'
import * as runs from '../domain/tasks/task-runs.repository'
import type { Metrics } from '../infra/metrics'
import { createBatcher, createRelay } from '../infra/batcher'
import type { JobConsumer, JobEntry } from './job-consumer'
import { createProgressCoalescer, type ProgressCoalescer } from './progress-coalescer'

/**
 * At most one stored progress report per task this often: every report is a
 * history row and a message to each subscriber, and a handler reporting after
 * every item of a long loop would otherwise write thousands.
 */
const PROGRESS_INTERVAL_MS = 100

export interface TaskRunnerOptions extends StreamDeps {
  db: Db
  workerId: string
  concurrency: number
  leaseMs: number
  retryBaseMs: number
  defaultTimeoutMs: number
  settings: HandlerSettings
  consumer: () => JobConsumer
  metrics?: Metrics
}

/** Why a running handler's signal was aborted; decides what is recorded afterwards. */
export class AbortReason extends Error {
  constructor(
    readonly kind: 'cancelled' | 'shutdown' | 'timeout',
    message = kind === 'cancelled' ? 'task was cancelled' : 'worker is shutting down',
  ) {
    super(message)
  }
}

/** Rejects when the signal aborts, so a handler that ignores its signal cannot hold the slot. */
const whenAborted = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))

/** A successful run, recorded (with its event and ack) by the outbox. */
interface Completion {
  key: runs.RunKey
  result: unknown
  streamIds: string[]
}
/** Something already stored: the change to stream, if any, and the jobs it settles. */
interface Stored {
  change?: StreamedChange
  streamIds?: string[]
}
/** What the outbox sends: completions to store first, or what is stored already. */
type Outgoing = Completion | Stored
const isCompletion = (i: Outgoing): i is Completion => 'key' in i

interface Running {
  key: runs.RunKey
  controller: AbortController
  streamIds: string[]
  done: Promise<void>
  /** Its outcome is stored; only its event and ack are still on their way. */
  settled: boolean
  progress: ProgressCoalescer
}

/**
 * Turns job entries into handler runs: one UPDATE claims the whole batch, each
 * claimed task runs concurrently up to the limit, and its outcome is written
 * (retrying while Postgres is away) before its job is acknowledged.
 */
export function createTaskRunner(o: TaskRunnerOptions) {
  const running = new Map<number, Running>()
  let slotFreed: (() => void) | null = null
  let stopping = false
  const log = o.logger

  const present = (changes: (StreamedChange | undefined)[]) => changes.filter((c): c is StreamedChange => c !== undefined)

  /**
   * Everything this worker streams about the tasks it runs leaves through one
   * batcher, in the order it was produced: a claim's PROCESSING events, then
   * progress, failures and completions, with the acks of the jobs they
   * settle. A lone change goes out at once; under
   * load the claims ride in the round trip of the next completions, and the
   * successes of a batch are written with one UPDATE, so a batch costs one
   * Redis round trip instead of two (each costs tens of microseconds of CPU at
   * both ends on this kind of machine).
   * A batch's UPDATE runs while the batch before it is still being pushed, so
   * a task finishing right after its claim does not wait for the claim's
   * events to reach Redis; pushes still leave one at a time, in batch order.
   */
  const pushes = createRelay()
  const outbox = createBatcher(async (items: Outgoing[]) => {
    const finished = new Map<number, StreamedChange>()
    const changeOf = (i: Outgoing) => (isCompletion(i) ? finished.get(i.key.id) : i.change)
    try {
      for (const c of await runs.finishTasks(o.db, items.filter(isCompletion))) finished.set(c.id, c)
    } finally {
      // Even when the UPDATE failed (its completions are retried), what is stored already goes out, in order.
      const settled = items.filter((i) => !isCompletion(i) || finished.has(i.key.id))
      await pushes.next(() => publishChanges(o, [], present(items.map(changeOf)), settled.flatMap((i) => i.streamIds ?? []))).started
    }
    return items.map(changeOf)
  })
  /**
   * Streams what is stored already and acknowledges the jobs it settles. Never
   * throws: a lost event is found by the hubs, and a lost ack only leaves a job
   * whose task is settled, acknowledged when it is delivered again.
   */
  const send = (item: Stored) => outbox.add(item).then(() => undefined, () => undefined)
  const publish = (changes: (StreamedChange | undefined)[]) => Promise.all(present(changes).map((change) => send({ change })))

  /** Retries a Postgres write until it lands: an outcome is never dropped, and the job stays unacked until then. */
  async function persist<T>(what: string, write: () => Promise<T>): Promise<T> {
    for (let delay = 100; ; delay = Math.min(delay * 2, 5000)) {
      try {
        return await write()
      } catch (e) {
        if (stopping && delay >= 5000) throw e
        log.warn(`could not record ${what}, retrying`, { error: coerceError(e).message })
        await Bun.sleep(delay)
      }
    }
  }

  /**
   * Whether this task's run is still working, so a job for it is a duplicate
   * to acknowledge with that run. A settled run is not: a job for its task now
   * is the retry it stored.
   */
  const inHand = (id: number) => running.get(id)?.settled === false

  async function onJobs(entries: JobEntry[]): Promise<void> {
    const byTask = new Map<number, string[]>()
    for (const entry of entries) {
      const parsed = jobMessageSchema.safeParse(entry.fields)
      if (!parsed.success) {
        await o.consumer().deadLetter(entry, 'malformed job: no valid task_id')
        continue
      }
      const ids = byTask.get(parsed.data.task_id)
      if (ids) ids.push(entry.streamId)
      else byTask.set(parsed.data.task_id, [entry.streamId])
    }
    const candidates = [...byTask.keys()].filter((id) => !inHand(id))
    const claimed = await persist('claim', () => runs.claimTasks(o.db, candidates, o.workerId, o.leaseMs))
    // Not awaited: the handlers need not wait for Redis, and the outbox keeps
    // PROCESSING ahead of whatever the run streams next.
    void publish(claimed)
    const claimedIds = new Set(claimed.map((c) => c.id))
    // A job whose task is not claimable (duplicate, not due, cancelled, finished) has nothing left to do.
    const idle = [...byTask.entries()].filter(([id]) => !claimedIds.has(id))
    if (idle.length) await ackIdle(idle, byTask)
    for (const task of claimed) start(task, byTask.get(task.id)!)
  }

  async function ackIdle(idle: [number, string[]][], byTask: Map<number, string[]>) {
    const missing = new Set(await persist('lookup', () => runs.findMissingIds(o.db, idle.map(([id]) => id))))
    const settled: string[] = []
    for (const [id, streamIds] of idle) {
      if (missing.has(id)) {
        for (const streamId of streamIds) await o.consumer().deadLetter({ streamId, fields: { task_id: String(id) } }, `task ${id} does not exist`)
      } else if (inHand(id)) {
        running.get(id)!.streamIds.push(...streamIds) // acked with the run it duplicates
      } else {
        settled.push(...streamIds)
      }
      byTask.delete(id)
    }
    // Not awaited, like the claim's events: the claimed tasks need not wait for it.
    if (settled.length) void send({ streamIds: settled })
  }

  function start(task: TaskChange, streamIds: string[]) {
    const key = { id: task.id, workerId: o.workerId, attempt: task.attempts }
    const controller = new AbortController()
    const run: Running = { key, controller, streamIds, done: Promise.resolve(), settled: false, progress: progressOf(key, controller) }
    // The task's previous attempt, settled and still streaming its outcome: a drain waits for both.
    const previous = running.get(task.id)
    running.set(task.id, run)
    const ran = execute(task, run).finally(() => {
      if (running.get(task.id) === run) running.delete(task.id)
      slotFreed?.()
    })
    run.done = previous ? Promise.all([previous.done, ran]).then(() => {}) : ran
  }

  async function execute(task: TaskChange, run: Running): Promise<void> {
    const taskLog = log.child({ taskId: task.id, attempt: run.key.attempt, type: task.type })
    o.metrics?.observeQueueWait(task.type, (Date.now() - task.run_after.getTime()) / 1000)
    const started = performance.now()
    const outcome = await runHandler(task, run, taskLog)
    // Before the outcome, so the history stays in order; completion stores progress 1, superseding a kept value.
    await run.progress.close({ flush: !('completed' in outcome) })
    const ranFor = (performance.now() - started) / 1000
    let change: StreamedChange | undefined
    try {
      if ('completed' in outcome) {
        change = await persist('outcome', () => outbox.add({ key: run.key, result: outcome.completed, streamIds: run.streamIds }))
      } else {
        change = await persist('outcome', () => outcome.record(run.key))
        // A retry may be due before this push ends (the sweeper queues it): its job must start a new run.
        run.settled = true
        await send({ change, streamIds: run.streamIds })
      }
    } catch (e) {
      // Shutting down with Postgres away: leave the job unacked; lease expiry recovers it.
      return taskLog.error('gave up recording outcome; the task will be recovered', { error: coerceError(e).message })
    }
    o.metrics?.observeRun(task.type, change?.status === 'COMPLETED' ? 'completed' : change ? 'failed' : 'aborted', ranFor)
  }

  /** A run's progress writes: a write that finds the run no longer held means it was cancelled. */
  function progressOf(key: runs.RunKey, controller: AbortController): ProgressCoalescer {
    const write = async (fraction: number) => {
      const change = await runs.recordProgress(o.db, key, fraction)
      if (!change) controller.abort(new AbortReason('cancelled'))
      await publish([change])
    }
    const onError = (e: unknown) => log.warn('could not record progress', { taskId: key.id, error: coerceError(e).message })
    return createProgressCoalescer(write, { intervalMs: PROGRESS_INTERVAL_MS, onError })
  }

  /** What to record once a handler is done: its result, or a change to write. */
  type Outcome = { completed: unknown } | { record: (k: runs.RunKey) => Promise<TaskChange | undefined> }

  async function runHandler(task: TaskChange, run: Running, taskLog: Logger): Promise<Outcome> {
    const handler = handlers[task.type]
    if (!handler) return { record: (k) => runs.failAttempt(o.db, k, `no handler for task type "${task.type}"`, 'FAILED', 0) }
    const payload = handler.payload.safeParse(task.payload)
    if (!payload.success) return { record: (k) => runs.failAttempt(o.db, k, `invalid payload: ${payload.error.issues[0]?.message}`, 'FAILED', 0) }
    const timeoutMs = task.timeout_ms ?? handler.timeoutMs ?? o.defaultTimeoutMs
    const timer = setTimeout(() => run.controller.abort(new AbortReason('timeout', `timed out after ${timeoutMs} ms`)), timeoutMs)
    try {
      const work = handler.run(payload.data, {
        taskId: task.id,
        attempt: run.key.attempt,
        signal: run.controller.signal,
        logger: taskLog,
        settings: o.settings,
        progress: (fraction) => run.progress.report(Math.min(1, Math.max(0, fraction))),
      })
      const result = await Promise.race([work, whenAborted(run.controller.signal)])
      if (run.controller.signal.aborted) return afterAbort(run, task)
      taskLog.info('task completed')
      return { completed: result }
    } catch (e) {
      if (run.controller.signal.aborted) return afterAbort(run, task)
      return failure(task, run, coerceError(e).message, taskLog)
    } finally {
      clearTimeout(timer)
    }
  }

  /** A failed attempt: retried after a backoff while attempts remain, else FAILED. */
  function failure(task: TaskChange, run: Running, error: string, taskLog: Logger): Outcome {
    const next = nextStatusAfterFailure(run.key.attempt, task.max_attempts)
    const delay = retryDelayMs(run.key.attempt, o.retryBaseMs)
    taskLog.info(next === 'PENDING' ? 'attempt failed, will retry' : 'task failed', { error })
    return { record: (k) => runs.failAttempt(o.db, k, error, next, delay) }
  }

  /**
   * Cancelled: the API already stored CANCELLED. Shutdown: hand the task back
   * to another worker. Timeout: a failed attempt like any other.
   */
  function afterAbort(run: Running, task: TaskChange): Outcome {
    const reason = run.controller.signal.reason
    if (!(reason instanceof AbortReason) || reason.kind === 'cancelled') return { record: async () => undefined }
    if (reason.kind === 'shutdown') return { record: (k) => runs.handBack(o.db, k) }
    return failure(task, run, reason.message, log.child({ taskId: task.id }))
  }

  /** A poison job: dead-lettered with its reason, and its task (if any) FAILED with it. */
  async function onPoison(entry: JobEntry, reason: string): Promise<void> {
    const parsed = jobMessageSchema.safeParse(entry.fields)
    if (parsed.success && !running.has(parsed.data.task_id)) {
      const failed = await persist('poison', () => runs.failForGood(o.db, parsed.data.task_id, `poison job: ${reason}`))
      await publish(failed)
    }
    await o.consumer().deadLetter(entry, reason)
  }

  return {
    onJobs,
    onPoison,
    running,
    capacity: () => (stopping ? 0 : o.concurrency - running.size),
    waitForCapacity: () =>
      new Promise<void>((resolve) => {
        slotFreed = resolve
        setTimeout(resolve, 1000) // also wakes to notice shutdown
      }),
    abort(taskId: number, reason: AbortReason) {
      running.get(taskId)?.controller.abort(reason)
    },
    /** Lets running tasks finish for up to graceMs, then hands the rest back. */
    async drain(graceMs: number): Promise<void> {
      stopping = true
      const all = () => Promise.all([...running.values()].map((r) => r.done))
      const finished = await Promise.race([all().then(() => true), Bun.sleep(graceMs).then(() => false)])
      if (!finished) {
        for (const r of running.values()) r.controller.abort(new AbortReason('shutdown'))
        // A handler that ignores its signal is left behind; its lease will expire and it runs again elsewhere.
        await Promise.race([all(), Bun.sleep(Math.max(1000, graceMs / 2))])
      }
      // The last outcomes' push may still be in flight: Redis must not be closed under it.
      await pushes.idle()
    },
  }
}

export type TaskRunner = ReturnType<typeof createTaskRunner>
