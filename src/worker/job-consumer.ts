import type { Logger } from '../infra/logger'
import { createBlockingReader, type Redis } from '../infra/redis'
import type { StreamKeys } from '../infra/stream-keys'
import { fieldsToRecord, jobMessageSchema } from '../domain/messages'

export interface JobEntry {
  streamId: string
  fields: Record<string, string>
}

/** A job as read from the stream: the entry that carries it and its task. */
export interface Job {
  streamId: string
  taskId: number
}

/** An entry delivered too often without an ack; its task, when it names one, is failed with the reason. */
export interface PoisonJob {
  entry: JobEntry
  taskId?: number
  reason: string
}

/** What one read hands the worker: jobs to run, or poison to set aside. */
export interface JobBatch {
  jobs: Job[]
  poison: PoisonJob[]
}

/** How many jobs the worker can take now, and a way to wait while that is none. */
export interface Slots {
  free(): number
  waitForFree(): Promise<void>
}

/** Where jobs that can never run go, with their reason. */
export interface DeadLetters {
  deadLetter(entry: JobEntry, reason: string): Promise<void>
}

export interface JobConsumerOptions {
  blocking: Redis
  producer: Redis
  keys: StreamKeys
  consumer: string
  visibilityTimeoutMs: number
  /** A job delivered this many times without an ack is poison: dead-lettered, not retried. */
  maxDeliveries: number
  logger: Logger
}

type Entries = [string, string[] | null][]
type Pending = [streamId: string, consumer: string, idleMs: number, deliveries: number][]

const isNoGroup = (e: unknown) => e instanceof Error && e.message.includes('NOGROUP')
const toEntries = (raw: Entries): JobEntry[] => raw.filter(([, f]) => f !== null).map(([streamId, f]) => ({ streamId, fields: fieldsToRecord(f!) }))
const taskIdOf = (entry: JobEntry) => jobMessageSchema.safeParse(entry.fields).data?.task_id

/**
 * The worker's side of the jobs stream: yields batches read with a consumer
 * group on its own blocking connection, takes over entries a dead consumer
 * left idle past the visibility timeout, and dead-letters what can never run.
 * Acks (XACK+XDEL once a job's outcome is stored) travel with the outcome's
 * events, through the outbox.
 */
export class JobConsumer implements DeadLetters {
  private running = false
  private lastReclaim = 0
  private readonly reader: ReturnType<typeof createBlockingReader>

  constructor(private readonly o: JobConsumerOptions) {
    this.reader = createBlockingReader(o.blocking, 10_000)
  }

  async start(): Promise<void> {
    this.running = true
    await this.ensureGroup().catch((e) => this.o.logger.warn('could not create consumer group yet', { error: (e as Error).message }))
  }

  /**
   * Batches of jobs while the consumer runs, each read only when a slot is
   * free. A failed read is retried with a backoff; the iteration ends on stop().
   */
  async *batches(slots: Slots): AsyncGenerator<JobBatch> {
    let backoff = 100
    while (this.running) {
      try {
        if (slots.free() <= 0) {
          await slots.waitForFree()
          continue
        }
        let entries: JobEntry[] = []
        if (Date.now() - this.lastReclaim > this.o.visibilityTimeoutMs / 2) {
          this.lastReclaim = Date.now()
          // Set aside before taking over the rest, so poison is never run again.
          const poison = await this.claimPoison()
          if (poison.length) yield { jobs: [], poison }
          entries = await this.reclaim(slots.free())
        }
        if (entries.length === 0) entries = await this.read(slots.free())
        backoff = 100
        const jobs = await this.parse(entries)
        if (jobs.length) yield { jobs, poison: [] }
      } catch (e) {
        if (!this.running) break
        await this.recover(e)
        // A NOGROUP answer or a refused connection returns at once: never spin.
        await Bun.sleep(backoff)
        backoff = Math.min(backoff * 2, 2000)
      }
    }
  }

  /** Resets the idle time of entries we are still working on, so no one takes them over. */
  async touch(streamIds: string[]): Promise<void> {
    if (streamIds.length === 0) return
    await this.o.producer.xclaim(this.o.keys.jobs, this.o.keys.workersGroup, this.o.consumer, 0, ...streamIds, 'JUSTID')
  }

  async deadLetter(entry: JobEntry, reason: string): Promise<void> {
    const { keys } = this.o
    await this.o.producer
      .pipeline()
      .xadd(keys.deadLetters, 'MAXLEN', '~', 10_000, '*', 'stream_id', entry.streamId, 'reason', reason, 'fields', JSON.stringify(entry.fields))
      .xack(keys.jobs, keys.workersGroup, entry.streamId)
      .xdel(keys.jobs, entry.streamId)
      .exec()
  }

  /** Stops reading; breaking the blocking connection ends a pending XREADGROUP at once. Idempotent. */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    this.reader.stop()
    this.o.blocking.disconnect()
  }

  /** At id 0, not $: after Redis lost its data, entries written meanwhile must not be skipped. */
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
      this.o.logger.debug('job read failed, retrying', { error: (e as Error).message })
    }
  }

  private async read(count: number): Promise<JobEntry[]> {
    const { keys } = this.o
    const read = this.o.blocking.xreadgroup('GROUP', keys.workersGroup, this.o.consumer, 'COUNT', Math.max(1, count), 'BLOCK', 1000, 'STREAMS', keys.jobs, '>')
    const res = (await this.reader.read(read)) as [string, Entries][] | null
    return res ? toEntries(res[0]![1]) : []
  }

  /** Entries that keep coming back unacknowledged would crash-loop the workers: claim them to set them aside. */
  private async claimPoison(): Promise<PoisonJob[]> {
    const { keys, producer } = this.o
    const pending = (await producer.xpending(keys.jobs, keys.workersGroup, 'IDLE', this.o.visibilityTimeoutMs, '-', '+', 100)) as Pending
    const poison = pending.filter(([, , , deliveries]) => deliveries >= this.o.maxDeliveries)
    if (poison.length === 0) return []
    const claimed = (await producer.xclaim(keys.jobs, keys.workersGroup, this.o.consumer, this.o.visibilityTimeoutMs, ...poison.map(([id]) => id))) as Entries
    const deliveries = new Map(poison.map(([id, , , n]) => [id, n]))
    return toEntries(claimed).map((entry) => ({
      entry,
      taskId: taskIdOf(entry),
      reason: `delivered ${deliveries.get(entry.streamId)} times without being acknowledged`,
    }))
  }

  /** Entries delivered to a consumer that stopped acking them (it died) come to us. */
  private async reclaim(count: number): Promise<JobEntry[]> {
    const { keys } = this.o
    const res = (await this.o.producer.xautoclaim(
      keys.jobs,
      keys.workersGroup,
      this.o.consumer,
      this.o.visibilityTimeoutMs,
      '0-0',
      'COUNT',
      Math.max(1, count),
    )) as [string, Entries, string[]?]
    // Entries deleted while pending come back as ids Redis already dropped from the PEL.
    const entries = toEntries(res[1])
    if (entries.length) this.o.logger.info('took over jobs left by a stopped consumer', { count: entries.length })
    return entries
  }

  /** A malformed entry can never run: it is dead-lettered here, and never reaches the worker. */
  private async parse(entries: JobEntry[]): Promise<Job[]> {
    const jobs: Job[] = []
    for (const entry of entries) {
      const taskId = taskIdOf(entry)
      if (taskId === undefined) await this.deadLetter(entry, 'malformed job: no valid task_id')
      else jobs.push({ streamId: entry.streamId, taskId })
    }
    return jobs
  }
}
