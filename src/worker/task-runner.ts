import type { TaskChange } from '../domain/task-events/task-event'
import type { Execution } from './execution'
import { AbortReason, type Run } from './run'

export interface TaskRunnerOptions {
  workerId: string
  concurrency: number
  execution: Execution
}

/**
 * The runs in this worker's hands and the slots they take: starts a claimed
 * task's run, aborts one on request, and on drain lets them finish within the
 * grace period before handing the rest back.
 */
export class TaskRunner {
  /** Task id -> its current run, until that run's outcome is streamed. */
  readonly running = new Map<number, Run>()
  private slotFreed: (() => void) | null = null
  private stopping = false

  constructor(private readonly o: TaskRunnerOptions) {}

  /** How many more jobs this worker can take now; none once it is stopping. */
  free(): number {
    return this.stopping ? 0 : this.o.concurrency - this.running.size
  }

  /** Resolves when a run ends (one waiter at a time: the pump). */
  runEnded(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.slotFreed = resolve
    })
  }

  /** Resolves when a run ends, or after a second anyway, so a waiting pump notices shutdown. */
  waitForFree(): Promise<void> {
    return Promise.race([this.runEnded(), Bun.sleep(1000)])
  }

  start(task: TaskChange): void {
    const key = { id: task.id, workerId: this.o.workerId, attempt: task.attempts }
    const controller = new AbortController()
    const progress = this.o.execution.progressFor(key, controller)
    const run: Run = { key, controller, done: Promise.resolve(), progress, renewedAt: performance.now() }
    // The task's previous attempt, settled and still streaming its outcome: a drain waits for both.
    const previous = this.running.get(task.id)
    this.running.set(task.id, run)
    const ran = this.o.execution.execute(task, run).finally(() => {
      if (this.running.get(task.id) === run) this.running.delete(task.id)
      this.slotFreed?.()
    })
    run.done = previous ? Promise.all([previous.done, ran]).then(() => {}) : ran
  }

  /** Whether a run of this task is in hand and still going (not aborted): the look that claimed it answered its job. */
  holds(taskId: number): boolean {
    return this.running.get(taskId)?.controller.signal.aborted === false
  }

  abort(taskId: number, reason: AbortReason): void {
    this.running.get(taskId)?.controller.abort(reason)
  }

  /** Lets running tasks finish for up to graceMs, then hands the rest back (once: the pipeline's drain calls it). */
  async drain(graceMs: number): Promise<void> {
    this.stopping = true
    const all = () => Promise.all([...this.running.values()].map((r) => r.done))
    const finished = await Promise.race([all().then(() => true), Bun.sleep(graceMs).then(() => false)])
    if (finished) return
    for (const r of this.running.values()) r.controller.abort(new AbortReason('shutdown'))
    // A handler that ignores its signal is left behind; its lease will expire and it runs again elsewhere.
    await Promise.race([all(), Bun.sleep(Math.max(1000, graceMs / 2))])
  }
}
