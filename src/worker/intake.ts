import type { Db } from '../infra/db'
import type { Logger } from '../infra/logger'
import * as runs from '../domain/tasks/task-runs.repository'
import type { DeadLetters, Job, JobBatch, PoisonJob } from './job-consumer'
import type { Outbox } from './outbox'
import type { TaskRunner } from './task-runner'

export interface IntakeOptions {
  db: Db
  workerId: string
  leaseMs: number
  runner: TaskRunner
  outbox: Outbox
  deadLetters: DeadLetters
  logger: Logger
  /** The task types this worker has handlers for. */
  types: readonly string[]
}

/**
 * Turns a batch of jobs into runs: one UPDATE claims the whole batch, each
 * claimed task starts on the runner, and a job with nothing left to do
 * (a duplicate, a task not due, cancelled, finished or gone) is settled
 * without running anything.
 */
export class Intake {
  constructor(private readonly o: IntakeOptions) {}

  async take(batch: JobBatch): Promise<void> {
    for (const poison of batch.poison) await this.setAside(poison)
    if (batch.jobs.length) await this.claim(batch.jobs)
  }

  private async claim(jobs: Job[]): Promise<void> {
    const byTask = new Map<number, string[]>()
    for (const { taskId, streamId } of jobs) {
      const ids = byTask.get(taskId)
      if (ids) ids.push(streamId)
      else byTask.set(taskId, [streamId])
    }
    const { db, workerId, leaseMs, runner, outbox } = this.o
    const candidates = [...byTask.keys()].filter((id) => !runner.inHand(id))
    const claimed = await outbox.persist('claim', () => runs.claimTasks(db, candidates, workerId, leaseMs, this.o.types))
    // Not awaited: the handlers need not wait for Redis, and the outbox keeps
    // PROCESSING ahead of whatever the run streams next.
    void outbox.publish(claimed)
    const claimedIds = new Set(claimed.map((c) => c.id))
    const idle = [...byTask.entries()].filter(([id]) => !claimedIds.has(id))
    if (idle.length) await this.settleIdle(idle)
    for (const task of claimed) runner.start(task, byTask.get(task.id)!)
  }

  /**
   * Jobs whose task was not claimed: dead-lettered if it is gone, else
   * acknowledged with nothing to run. A pending task of a type this worker
   * does not handle is handed to the sweeper, which queues it again for a
   * worker that does.
   */
  private async settleIdle(idle: [number, string[]][]): Promise<void> {
    const { db, runner, outbox, deadLetters } = this.o
    const ids = idle.map(([id]) => id)
    const [missing, released] = await outbox.persist('lookup', () =>
      Promise.all([runs.findMissingIds(db, ids).then((m) => new Set(m)), runs.releaseUnhandled(db, ids, this.o.types)]),
    )
    if (released.length) this.o.logger.debug('left tasks of types this worker does not handle to others', { tasks: released })
    const settled: string[] = []
    for (const [id, streamIds] of idle) {
      if (missing.has(id)) {
        for (const streamId of streamIds) await deadLetters.deadLetter({ streamId, fields: { task_id: String(id) } }, `task ${id} does not exist`)
      } else if (runner.inHand(id)) {
        runner.settleWith(id, streamIds)
      } else {
        settled.push(...streamIds)
      }
    }
    // Not awaited, like the claim's events: the claimed tasks need not wait for it.
    if (settled.length) void outbox.send({ streamIds: settled })
  }

  /** A poison job: its task (if any, and not running here) FAILED with the reason, then dead-lettered. */
  private async setAside({ entry, taskId, reason }: PoisonJob): Promise<void> {
    const { db, runner, outbox, deadLetters } = this.o
    if (taskId !== undefined && !runner.running.has(taskId)) {
      const failed = await outbox.persist('poison', () => runs.failForGood(db, taskId, `poison job: ${reason}`))
      await outbox.publish(failed)
    }
    await deadLetters.deadLetter(entry, reason)
  }
}
