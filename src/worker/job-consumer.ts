import { pushToStreams } from '../domain/streams'
import type { Logger } from '../infra/logger'
import { createBlockingReader, watchdogMs, type Redis } from '../infra/redis'
import type { Shard, StreamKeys } from '../infra/stream-keys'

export interface JobConsumerOptions {
  /** A new blocking connection: one per shard, since a blocking read holds its connection (on a cluster, its node's). */
  blocking: () => Redis
  producer: Redis
  keys: StreamKeys
  consumer: string
  /** The longest a worker with free slots waits for a job before looking in Postgres anyway. */
  pollMs: number
  /** The worker's free slots: jobs a read takes beyond them (less the jobs taken since the last look) go back for another worker. */
  room?: () => number
  /**
   * Whether this worker has the task in hand: the look that claimed it
   * answered its job, which then wakes nothing. A task made ready again while
   * its run here goes on (its lease lost to a stall, say) waits for the poll.
   */
  holds?: (taskId: number) => boolean
  /** The least time a blocking read may take before its connection is deemed stuck (tests shorten it). */
  watchdogFloorMs?: number
  /** How long read jobs wait to be deleted together (tests lengthen it). */
  deleteAfterMs?: number
  logger: Logger
}

type Entries = [string, string[] | null][]
/** A job's one field pair is task_id and the task's id. */
const jobTaskId = (fields: string[] | null) => Number(fields?.[1])

/**
 * Deletes read jobs a moment after they were read, together: one XDEL per
 * stream for the reads of that moment instead of a round trip per read.
 * Until then a read job still counts in its stream's length.
 */
class ReadJobs {
  private readonly pending = new Map<string, string[]>()
  private timer: ReturnType<typeof setTimeout> | null = null

  constructor(
    private readonly producer: Redis,
    private readonly afterMs: number,
  ) {}

  add(stream: string, ids: string[]): void {
    const list = this.pending.get(stream)
    if (list) list.push(...ids)
    else this.pending.set(stream, ids)
    this.timer ??= setTimeout(() => this.flush(), this.afterMs)
  }

  /**
   * Sends the pending deletes now, without waiting for them: a Redis that is
   * away must not hold anyone up, and a job left behind is trimmed with the
   * stream's oldest.
   */
  flush(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    for (const [stream, ids] of this.pending) this.producer.xdel(stream, ...ids).catch(() => 0)
    this.pending.clear()
  }
}

const isNoGroup = (e: unknown) => e instanceof Error && e.message.includes('NOGROUP')

/** One shard's jobs stream, read on a connection of its own. */
interface ShardReader {
  shard: Shard
  redis: Redis
  reader: ReturnType<typeof createBlockingReader>
  /** The read in flight: a caller that stopped waiting for it (a slot came free) may wait for it again. */
  pending: Promise<void> | undefined
}

/**
 * The worker's side of the jobs streams. A job says "a task became ready"; the
 * worker then claims from Postgres whichever ready tasks come first by queue,
 * owner turn and priority (domain/tasks/task-claim.repository.ts), which a
 * FIFO stream cannot order. Each shard's consumer group hands each job to one
 * worker with free slots, so one task wakes one worker, not all of them. Jobs
 * are read without acknowledgement and deleted soon after (ReadJobs): one lost
 * or trimmed only delays a task until the next poll, since every ready task is
 * found in Postgres.
 */
export class JobConsumer {
  private running = false
  private readonly shards: ShardReader[]
  /** The tasks of the jobs read since the pump last looked in Postgres. */
  private taken: number[] = []
  private readonly readJobs: ReadJobs

  constructor(private readonly o: JobConsumerOptions) {
    this.readJobs = new ReadJobs(o.producer, o.deleteAfterMs ?? 100)
    this.shards = o.keys.shards.map((shard) => {
      const redis = o.blocking()
      return { shard, redis, reader: createBlockingReader(redis, watchdogMs(o.pollMs, o.watchdogFloorMs)), pending: undefined }
    })
  }

  get reading(): boolean {
    return this.running
  }

  async start(): Promise<void> {
    this.running = true
    await Promise.all(
      this.shards.map((s) =>
        this.ensureGroup(s.shard).catch((e) => this.o.logger.warn('could not create consumer group yet', { error: (e as Error).message })),
      ),
    )
  }

  /**
   * Waits until a job arrives on any shard (taking up to `count` from it) or
   * pollMs passes; returns how many jobs were read since the pump last looked
   * in Postgres, less those whose tasks this worker has in hand by now (that
   * look claimed them). A failed read waits out the poll instead, so a worker
   * without Redis still finds ready tasks in Postgres. One read per shard at
   * a time: a wait while they are in flight waits for those, and jobs a read
   * took after the last look end the next wait at once (they were already
   * deleted from the stream, so they must not go unnoticed until the poll).
   */
  wait(count: number): Promise<number> {
    for (const s of this.shards) {
      s.pending ??= this.read(s, count).then((tasks) => {
        s.pending = undefined
        this.taken.push(...tasks)
      })
    }
    const owed = this.owed()
    if (owed > 0) return Promise.resolve(owed)
    const first = Promise.race(this.shards.map((s) => s.pending!))
    if (this.shards.length === 1) return first.then(() => this.owed())
    // One push of a batch reaches every shard at about the same time: the
    // other shards' answers already read by then are taken with the first,
    // so the batch costs one claim, not one per shard.
    return first.then(() => new Promise<number>((resolve) => setImmediate(() => resolve(this.owed()))))
  }

  /** The jobs taken since the last look whose tasks are not in this worker's hands. */
  private owed(): number {
    const { holds } = this.o
    if (holds) this.taken = this.taken.filter((id) => !holds(id))
    return this.taken.length
  }

  /**
   * The pump is about to look in Postgres: the jobs read so far are answered
   * by that look. Counted from here, not from when a wait returned: a wait
   * the pump stopped listening to (a run ended first) must not swallow a job
   * read while the look runs, which may have started before its task committed.
   */
  lookingInPostgres(): void {
    this.taken = []
  }

  /** Reads jobs from the shard: the tasks of those kept, none when the poll ran out or the read failed. */
  private async read(s: ShardReader, count: number): Promise<number[]> {
    const since = performance.now()
    try {
      for (;;) {
        const entries = await this.readOnce(s, count, Math.max(1, Math.ceil(this.o.pollMs - (performance.now() - since))))
        const ids = entries.map(([id]) => id)
        if (ids.length) this.readJobs.add(s.shard.jobs, ids)
        // A claim takes every ready task it finds, so under load many jobs arrive for tasks already running here:
        // waking the pump for them would only cost an empty claim. Reading on, the read ends with a new job or the
        // poll, counted from the first read: such jobs never put off the pump's look of every pollMs.
        const fresh = this.o.holds ? entries.filter(([, fields]) => !this.o.holds!(jobTaskId(fields))) : entries
        if (fresh.length === 0 && entries.length > 0 && this.running && performance.now() - since < this.o.pollMs) continue
        // With several shards, or slots filled while a read was out, a read can take more jobs than the worker
        // has room for: the rest go back on their stream for a worker with room.
        const keep = this.o.room ? Math.min(fresh.length, Math.max(0, this.o.room() - this.owed())) : fresh.length
        if (keep < fresh.length) void this.handBack(fresh.slice(keep))
        return fresh.slice(0, keep).map(([, fields]) => jobTaskId(fields))
      }
    } catch (e) {
      if (!this.running) return []
      // A group recreated after Redis lost its data: read again at once.
      if (await this.recover(s.shard, e)) return []
      // Otherwise Redis is away: wait a moment (the pump looks in Postgres meanwhile), never a busy loop.
      await Bun.sleep(Math.min(this.o.pollMs, 1000))
      return []
    }
  }

  /** One XREADGROUP of the shard's jobs, blocking up to blockMs: the entries it took, none when that ran out. */
  private async readOnce(s: ShardReader, count: number, blockMs: number): Promise<Entries> {
    const { keys } = this.o
    const read = s.redis.xreadgroup(
      'GROUP',
      keys.workersGroup,
      this.o.consumer,
      'COUNT',
      Math.max(1, count),
      'BLOCK',
      blockMs,
      'NOACK',
      'STREAMS',
      s.shard.jobs,
      '>',
    )
    const res = (await s.reader.read(read)) as [string, Entries][] | null
    return res?.[0]?.[1] ?? []
  }

  /** Stops reading; stopping the readers ends pending XREADGROUPs at once, whatever the connection does. Idempotent. */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    for (const s of this.shards) {
      s.reader.stop()
      s.redis.disconnect()
    }
    this.readJobs.flush()
  }

  /** At id 0, not $: after Redis lost its data, jobs written meanwhile must not be skipped. */
  private async ensureGroup(shard: Shard): Promise<void> {
    try {
      await this.o.producer.xgroup('CREATE', shard.jobs, this.o.keys.workersGroup, '0', 'MKSTREAM')
    } catch (e) {
      if (!(e instanceof Error && e.message.includes('BUSYGROUP'))) throw e
    }
  }

  /** Whether the failed read can be retried at once (its missing group was recreated). */
  private async recover(shard: Shard, e: unknown): Promise<boolean> {
    if (isNoGroup(e)) {
      this.o.logger.warn('jobs consumer group missing (redis lost its data?), recreating it', { stream: shard.jobs })
      return this.ensureGroup(shard).then(
        () => true,
        () => false,
      )
    }
    this.o.logger.debug('job read failed; looking in postgres meanwhile', { stream: shard.jobs, error: (e as Error).message })
    return false
  }

  private async handBack(entries: Entries): Promise<void> {
    const tasks = entries.map(([, fields]) => jobTaskId(fields)).filter((id) => Number.isInteger(id))
    await pushToStreams({ redis: this.o.producer, keys: this.o.keys, eventsMaxLen: 0, logger: this.o.logger }, tasks, [])
  }
}
