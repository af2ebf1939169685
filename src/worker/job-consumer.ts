import type { Logger } from '../infra/logger'
import { createBlockingReader, type Redis } from '../infra/redis'
import type { StreamKeys } from '../infra/stream-keys'
import { fieldsToRecord } from '../domain/messages'

export interface JobEntry {
  streamId: string
  fields: Record<string, string>
}

type Entries = [string, string[] | null][]

export interface JobConsumerOptions {
  blocking: Redis
  producer: Redis
  keys: StreamKeys
  consumer: string
  visibilityTimeoutMs: number
  /** A job delivered this many times without an ack is poison: dead-lettered, not retried. */
  maxDeliveries: number
  logger: Logger
  /** How many more jobs the worker can take now; the loop waits while it is 0. */
  capacity(): number
  waitForCapacity(): Promise<void>
  onJobs(entries: JobEntry[]): Promise<void>
  onPoison(entry: JobEntry, reason: string): Promise<void>
}

const isNoGroup = (e: unknown) => e instanceof Error && e.message.includes('NOGROUP')

/**
 * The worker's side of the jobs stream: a consumer-group read loop on its own
 * blocking connection, periodic takeover of entries a dead consumer left idle
 * past the visibility timeout, and dead letters. Acks (XACK+XDEL once a job's
 * outcome is stored) travel with the outcome's events, through pushToStreams.
 */
export function createJobConsumer(o: JobConsumerOptions) {
  const { keys } = o
  let running = false
  let loop: Promise<void> | null = null
  let lastReclaim = 0
  const reader = createBlockingReader(o.blocking, 10_000)

  /** At id 0, not $: after Redis lost its data, entries written meanwhile must not be skipped. */
  async function ensureGroup() {
    try {
      await o.producer.xgroup('CREATE', keys.jobs, keys.workersGroup, '0', 'MKSTREAM')
    } catch (e) {
      if (!(e instanceof Error && e.message.includes('BUSYGROUP'))) throw e
    }
  }

  const toEntries = (raw: Entries): JobEntry[] =>
    raw.filter(([, f]) => f !== null).map(([streamId, f]) => ({ streamId, fields: fieldsToRecord(f!) }))

  async function readOnce(): Promise<JobEntry[]> {
    const read = o.blocking.xreadgroup(
      'GROUP', keys.workersGroup, o.consumer,
      'COUNT', Math.max(1, o.capacity()),
      'BLOCK', 1000,
      'STREAMS', keys.jobs, '>',
    )
    const res = (await reader.read(read)) as [string, Entries][] | null
    return res ? toEntries(res[0]![1]) : []
  }

  /** Entries that keep coming back unacknowledged would crash-loop the workers: set them aside. */
  async function setAsidePoison(): Promise<void> {
    const pending = (await o.producer.xpending(keys.jobs, keys.workersGroup, 'IDLE', o.visibilityTimeoutMs, '-', '+', 100)) as [
      string,
      string,
      number,
      number,
    ][]
    const poison = pending.filter(([, , , deliveries]) => deliveries >= o.maxDeliveries)
    if (poison.length === 0) return
    const claimed = (await o.producer.xclaim(keys.jobs, keys.workersGroup, o.consumer, o.visibilityTimeoutMs, ...poison.map(([id]) => id))) as Entries
    const deliveries = new Map(poison.map(([id, , , n]) => [id, n]))
    for (const entry of toEntries(claimed)) {
      await o.onPoison(entry, `delivered ${deliveries.get(entry.streamId)} times without being acknowledged`)
    }
  }

  /** Entries delivered to a consumer that stopped acking them (it died) come to us. */
  async function reclaim(): Promise<JobEntry[]> {
    await setAsidePoison()
    const res = (await o.producer.xautoclaim(
      keys.jobs, keys.workersGroup, o.consumer, o.visibilityTimeoutMs, '0-0', 'COUNT', Math.max(1, o.capacity()),
    )) as [string, Entries, string[]?]
    // Entries deleted while pending come back as ids Redis already dropped from the PEL.
    return toEntries(res[1])
  }

  async function run() {
    let backoff = 100
    while (running) {
      try {
        if (o.capacity() <= 0) {
          await o.waitForCapacity()
          continue
        }
        let entries: JobEntry[] = []
        if (Date.now() - lastReclaim > o.visibilityTimeoutMs / 2) {
          lastReclaim = Date.now()
          entries = await reclaim()
          if (entries.length) o.logger.info('took over jobs left by a stopped consumer', { count: entries.length })
        }
        if (entries.length === 0) entries = await readOnce()
        backoff = 100
        if (entries.length) await o.onJobs(entries)
      } catch (e) {
        if (!running) break
        if (isNoGroup(e)) {
          o.logger.warn('jobs consumer group missing (redis lost its data?), recreating it')
          await ensureGroup().catch(() => {})
        } else {
          o.logger.debug('job read failed, retrying', { error: (e as Error).message })
        }
        // A NOGROUP answer or a refused connection returns at once: never spin.
        await Bun.sleep(backoff)
        backoff = Math.min(backoff * 2, 2000)
      }
    }
  }

  return {
    async start() {
      running = true
      await ensureGroup().catch((e) => o.logger.warn('could not create consumer group yet', { error: (e as Error).message }))
      loop = run()
    },
    /** Resets the idle time of entries we are still working on, so no one takes them over. */
    async touch(streamIds: string[]): Promise<void> {
      if (streamIds.length === 0) return
      await o.producer.xclaim(keys.jobs, keys.workersGroup, o.consumer, 0, ...streamIds, 'JUSTID')
    },
    async deadLetter(entry: JobEntry, reason: string): Promise<void> {
      await o.producer
        .pipeline()
        .xadd(keys.deadLetters, 'MAXLEN', '~', 10_000, '*', 'stream_id', entry.streamId, 'reason', reason, 'fields', JSON.stringify(entry.fields))
        .xack(keys.jobs, keys.workersGroup, entry.streamId)
        .xdel(keys.jobs, entry.streamId)
        .exec()
    },
    /** Stops reading; breaking the blocking connection ends a pending XREADGROUP at once. */
    async stop() {
      if (!running) return
      running = false
      reader.stop()
      o.blocking.disconnect()
      await loop?.catch(() => {})
    },
  }
}

export type JobConsumer = ReturnType<typeof createJobConsumer>
