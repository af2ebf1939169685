import type { Db } from '../infra/db'
import { coerceError } from '../infra/logger'
import type { Metrics } from '../infra/metrics'
import type { StreamDeps } from '../domain/streams'
import type { HandlerModule } from '../handlers/handler'
import { Execution } from './execution'
import { Intake } from './intake'
import { LeaseKeeper, type JobToucher } from './lease-keeper'
import type { DeadLetters, JobBatch } from './job-consumer'
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
}

/**
 * Builds the path of a job, each part knowing only the ones after it:
 * intake (claim a batch) -> runner (slots, runs in hand) -> execution (handler,
 * timeout, failure policy) -> outbox (store, stream, ack). The consumer is
 * not built here: it only feeds batches in and takes dead letters.
 */
export function createJobPipeline(o: JobPipelineOptions, consumer: DeadLetters & JobToucher) {
  const outbox = new Outbox(o)
  const leases = new LeaseKeeper({ ...o, consumer })
  const execution = new Execution({ ...o, outbox, leases })
  const runner = new TaskRunner({ workerId: o.workerId, concurrency: o.concurrency, execution })
  const intake = new Intake({ ...o, runner, outbox, deadLetters: consumer, types: Object.keys(o.handlers) })
  leases.start(() => [...runner.running.values()])
  let draining: Promise<void> | null = null

  return {
    intake,
    runner,
    outbox,
    /** Takes each batch in turn until the batches end (the consumer stopped). */
    async pump(batches: AsyncIterable<JobBatch>): Promise<void> {
      for await (const batch of batches) {
        // Its jobs stay pending: delivered again, or taken over once idle.
        await intake.take(batch).catch((e) => o.logger.warn('could not take jobs, leaving them pending', { error: coerceError(e).message }))
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
