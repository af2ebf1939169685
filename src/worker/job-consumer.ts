import type { Logger } from '../infra/logger'
import { createBlockingReader, type Redis } from '../infra/redis'
import type { StreamKeys } from '../infra/stream-keys'

export interface JobConsumerOptions {
  blocking: Redis
  producer: Redis
  keys: StreamKeys
  consumer: string
  /** The longest a worker with free slots waits for a job before looking in Postgres anyway. */
  pollMs: number
  logger: Logger
}

type Entries = [string, string[] | null][]

const isNoGroup = (e: unknown) => e instanceof Error && e.message.includes('NOGROUP')

/**
 * The worker's side of the jobs stream. A job says "a task became ready"; the
 * worker then claims from Postgres whichever ready tasks come first by queue,
 * owner turn and priority (domain/tasks/task-claim.repository.ts), which a
 * FIFO stream cannot order. The consumer group hands each job to one worker
 * with free slots, so one task wakes one worker, not all of them. Jobs are
 * read without acknowledgement and deleted once read: one lost or trimmed
 * only delays a task until the next poll, since every ready task is found
 * in Postgres.
 */
export class JobConsumer {
  private running = false
  /** The read in flight: a caller that stopped waiting for it (a slot came free) may wait for it again. */
  private pending: Promise<number> | undefined
  private readonly reader: ReturnType<typeof createBlockingReader>

  constructor(private readonly o: JobConsumerOptions) {
    this.reader = createBlockingReader(o.blocking, 10_000)
  }

  get reading(): boolean {
    return this.running
  }

  async start(): Promise<void> {
    this.running = true
    await this.ensureGroup().catch((e) => this.o.logger.warn('could not create consumer group yet', { error: (e as Error).message }))
  }

  /**
   * Waits until a job arrives (taking up to `count`) or pollMs passes; returns
   * how many jobs it took. A failed read waits out the poll instead, so a
   * worker without Redis still finds ready tasks in Postgres. One read at a
   * time: a wait while one is in flight waits for that one.
   */
  wait(count: number): Promise<number> {
    this.pending ??= this.read(count).finally(() => {
      this.pending = undefined
    })
    return this.pending
  }

  private async read(count: number): Promise<number> {
    const { keys } = this.o
    try {
      const read = this.o.blocking.xreadgroup(
        'GROUP',
        keys.workersGroup,
        this.o.consumer,
        'COUNT',
        Math.max(1, count),
        'BLOCK',
        this.o.pollMs,
        'NOACK',
        'STREAMS',
        keys.jobs,
        '>',
      )
      const res = (await this.reader.read(read)) as [string, Entries][] | null
      const ids = res?.[0]?.[1].map(([id]) => id) ?? []
      if (ids.length) void this.o.producer.xdel(keys.jobs, ...ids).catch(() => {})
      return ids.length
    } catch (e) {
      if (!this.running) return 0
      await this.recover(e)
      await Bun.sleep(this.o.pollMs)
      return 0
    }
  }

  /** Stops reading; breaking the blocking connection ends a pending XREADGROUP at once. Idempotent. */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    this.reader.stop()
    this.o.blocking.disconnect()
  }

  /** At id 0, not $: after Redis lost its data, jobs written meanwhile must not be skipped. */
  private async ensureGroup(): Promise<void> {
    try {
      await this.o.producer.xgroup('CREATE', this.o.keys.jobs, this.o.keys.workersGroup, '0', 'MKSTREAM')
    } catch (e) {
      if (!(e instanceof Error && e.message.includes('BUSYGROUP'))) throw e
    }
  }

  private async recover(e: unknown): Promise<void> {
    if (isNoGroup(e)) {
      this.o.logger.warn('jobs consumer group missing (redis lost its data?), recreating it')
      await this.ensureGroup().catch(() => {})
    } else {
      this.o.logger.debug('job read failed; looking in postgres meanwhile', { error: (e as Error).message })
    }
  }
}
