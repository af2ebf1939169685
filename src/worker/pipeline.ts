import type { Db } from '../infra/db'
import { coerceError } from '../infra/logger'
import type { Metrics } from '../infra/metrics'
import type { StreamDeps } from '../domain/streams'
import type { HandlerModule } from '../handlers/handler'
import { Execution } from './execution'
import { Intake } from './intake'
import type { QueueLimit } from '../domain/tasks/task-claim.repository'
import { LeaseKeeper } from './lease-keeper'
import { Outbox } from './outbox'
import { TaskRunner } from './task-runner'

export interface JobPipelineOptions extends StreamDeps {
  db: Db
  workerId: string
  concurrency: number
  leaseMs: number
  retryBaseMs: number
  defaultTimeoutMs: number
  metrics?: Metrics
  /** Task type -> handler: the built-in types and the loaded handler modules. */
  handlers: HandlerModule
  /** The queues this worker serves; null: all of them. */
  queues?: readonly string[] | null
  limits?: readonly QueueLimit[]
  /**
   * Whether another live worker lacks some of this one's queues or types (the
   * heartbeat's answer): it may read the jobs of tasks only this worker can
   * take, which then have only this worker's looks. Assumed when not given.
   */
  othersDiffer?: () => boolean
  /** How long a claim's events may wait to share a push, and how recent a flush makes a worker busy (Outbox.hold); tests set them. */
  holdMs?: number
  busyMs?: number
}

/** What wakes the pump when it found no ready task: the jobs stream (job-consumer.ts), or a timer. */
export interface Wakeups {
  readonly reading: boolean
  /** Resolves when a task may have become ready, or after a while anyway. */
  wait(count: number): Promise<number>
  /** Told just before each look in Postgres: what woke it before then is answered by that look. */
  lookingInPostgres(): void
}

/**
 * Builds the path of a task, each part knowing only the ones after it:
 * intake (claim ready tasks) -> runner (slots, runs in hand) -> execution
 * (handler, timeout, failure policy) -> outbox (store, stream). The consumer
 * is not built here: it only says when to look again.
 */
export function createJobPipeline(o: JobPipelineOptions) {
  const outbox = new Outbox(o)
  const leases = new LeaseKeeper(o)
  const execution = new Execution({ ...o, outbox, leases })
  const runner = new TaskRunner({ workerId: o.workerId, concurrency: o.concurrency, execution })
  const intake = new Intake({ ...o, runner, outbox, types: Object.keys(o.handlers), queues: o.queues ?? null, limits: o.limits ?? [] })
  leases.start(() => [...runner.running.values()])
  let draining: Promise<void> | null = null

  return {
    intake,
    runner,
    outbox,
    /**
     * While the consumer reads: fills free slots from Postgres, and when that
     * found fewer ready tasks than slots, waits for a job or the poll (and a
     * run's end, where that may ready a task: see below) before looking again.
     */
    async pump(wakeups: Wakeups): Promise<void> {
      while (wakeups.reading) {
        const free = runner.free()
        if (free <= 0) {
          await runner.waitForFree()
          continue
        }
        wakeups.lookingInPostgres()
        const { claimed, lookAgainMs } = await intake.fill(free).catch((e) => {
          o.logger.warn('could not claim tasks', { error: coerceError(e).message })
          return { claimed: 0, lookAgainMs: undefined }
        })
        if (claimed >= free) continue
        // A run that ends may free a limited queue's slot, and a rate's bucket refills with time: neither sends a job.
        // Nor does a job read by a worker that cannot take its task (another queue or type): it waits for a look.
        // Where every other worker can take what this one can, and nothing is limited, a run's end readies nothing.
        const wakes: Promise<unknown>[] = [wakeups.wait(free - claimed)]
        if (intake.limited || (o.othersDiffer?.() ?? true)) wakes.push(runner.runEnded())
        if (lookAgainMs !== undefined) wakes.push(Bun.sleep(lookAgainMs))
        await Promise.race(wakes)
      }
    },
    /** Lets running tasks finish within graceMs, hands back the rest, and waits for the last push. Idempotent. */
    drain(graceMs: number): Promise<void> {
      draining ??= (async () => {
        outbox.stopRetrying()
        await runner.drain(graceMs)
        leases.stop()
        await outbox.idle()
      })()
      return draining
    },
  }
}

export type JobPipeline = ReturnType<typeof createJobPipeline>
