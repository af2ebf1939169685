import { coerceError, type Logger } from '../../infra/logger'
import { createBlockingReader, streamEndId, watchdogMs, type Redis } from '../../infra/redis'
import type { Shard, StreamKeys } from '../../infra/stream-keys'
import { fieldsToEvent } from '../../domain/task-events/task-event'
import type { Following } from './following'

export interface StreamTailOptions {
  /** A new blocking connection: one per shard's events stream (on a cluster they live on different nodes). */
  redis: (shard: Shard) => Redis
  keys: StreamKeys
  logger: Logger
  /** How long the tail keeps following after the last socket here left. */
  lingerMs: number
  /** Whether something in this process listens, which keeps the tail following as a socket does. */
  hasListeners(): boolean
  /** A following state for a new wake; isCurrent says whether the tail still holds it. */
  follow(isCurrent: () => boolean): Following
}

type Entries = [Buffer, [Buffer, Buffer[]][]][] | null
/** How long one XREAD of a quiet stream blocks before it is sent again. */
const BLOCK_MS = 1000

/** A settled read of one shard, from the wake that sent it. */
type ShardRead = { shard: ShardTail; wake: number; entries: Entries } | { shard: ShardTail; wake: number; error: Error }

/** One shard's events stream: its connection, its position and its outage. */
interface ShardTail {
  key: string
  redis: Redis
  reader: ReturnType<typeof createBlockingReader>
  /** The id of the last entry read; null until this wake learnt where the stream ends. */
  id: string | null
  /** The read in flight (it never rejects). */
  pending: Promise<ShardRead> | null
  failing: boolean
  /**
   * When reading this shard stopped working (ioredis re-sends a read after
   * reconnecting, so no error says so; a position not yet learnt counts too):
   * the catch-up once it reads again starts from a little before it.
   */
  outageSince: number | null
  /** When a read of it last worked. */
  lastReadAt: number | null
}

/** An outage counts from the shard's last read that worked: a failure can take seconds to show (a cluster's redirections, the watchdog). */
function markOutage(s: ShardTail): void {
  s.outageSince ??= s.lastReadAt ?? Date.now()
}

/**
 * Reads every shard's events stream from this instance's own positions (plain
 * XREAD, so every API instance sees every event) and hands each entry to the
 * current following state. A task's events are all on one shard, so they
 * arrive in order; the shards are read side by side, each on its connection.
 * It reads only while someone here is owed events; waking starts over from
 * the streams' ends with a new following state.
 */
export class StreamTail {
  /** The state of this wake; null while idle and until the wake knows where the streams end. */
  current: Following | null = null
  private running = false
  private loop: Promise<void> | null = null
  private readonly shards: ShardTail[]
  /** Counts wakes: a read sent in an earlier one is dropped, since its position belongs to no socket here. */
  private wakes = 0
  /** Open sockets here; with none (and no listener, and the linger over) the streams are not read. */
  private joined = 0
  private lastLeftAt = -Infinity
  private wakeUp: (() => void) | null = null
  private positioned = Promise.withResolvers<void>()

  constructor(private readonly o: StreamTailOptions) {
    this.shards = o.keys.shards.map((shard) => {
      const redis = o.redis(shard)
      const tail: ShardTail = {
        key: shard.events,
        redis,
        reader: createBlockingReader(redis, watchdogMs(BLOCK_MS)),
        id: null,
        pending: null,
        failing: false,
        outageSince: null,
        lastReadAt: null,
      }
      redis.on('close', () => {
        if (this.running && this.current) markOutage(tail)
      })
      return tail
    })
  }

  /** Resolves once the tail is idle or knows where the streams end, so no later event is missed. */
  start(): Promise<void> {
    this.running = true
    return new Promise((resolve) => {
      this.loop = this.run(resolve)
    })
  }

  /** A socket open here, until the returned function is called: while there is one, the streams are read. */
  join(): () => void {
    this.joined++
    this.wake()
    let left = false
    return () => {
      if (!left && --this.joined === 0) this.lastLeftAt = performance.now()
      left = true
    }
  }

  /** Lets an idle tail look again at whether anyone here is owed events. */
  wake(): void {
    this.wakeUp?.()
    this.wakeUp = null
  }

  /** Settles once the tail follows the streams from a point no later than this call. */
  following(): Promise<void> {
    return this.positioned.promise
  }

  async close(): Promise<void> {
    if (!this.running) return
    this.running = false
    this.wake()
    for (const s of this.shards) {
      s.reader.stop()
      s.redis.disconnect()
    }
    await this.loop?.catch(() => {})
  }

  private hasAudience(): boolean {
    return this.joined > 0 || this.o.hasListeners() || performance.now() - this.lastLeftAt < this.o.lingerMs
  }

  private async run(onReady: () => void): Promise<void> {
    while (this.running) {
      if (!this.hasAudience()) {
        await this.goIdle(onReady)
        continue
      }
      try {
        if (!this.current) await this.position()
        onReady()
        await this.readNext()
      } catch (e) {
        // A catch-up from Postgres failed: the shard reads on and the periodic checks fill in.
        this.o.logger.warn('event hub could not catch up from postgres; retrying', { error: coerceError(e).message })
        await Bun.sleep(250)
      }
    }
  }

  /** Stops following and forgets everything of this wake, then waits for someone to be owed events. */
  private async goIdle(onReady: () => void): Promise<void> {
    if (this.current) {
      this.current = null
      this.positioned = Promise.withResolvers<void>()
    }
    this.wakes++
    for (const s of this.shards) {
      s.id = null
      s.failing = false
      s.outageSince = null
      s.lastReadAt = null
    }
    onReady()
    await new Promise<void>((r) => (this.wakeUp = r))
  }

  /**
   * Finds where each stream ends, then starts a new following state. A shard
   * whose end cannot be learnt now (its node is away) learns it when it reads
   * again, and catches up from Postgres from this moment.
   */
  private async position(): Promise<void> {
    const next: Following = this.o.follow(() => this.current === next)
    const since = Date.now()
    await Promise.all(
      this.shards.map(async (s) => {
        s.id = await streamEndId(s.redis, s.key).catch(() => null)
        if (s.id === null) s.outageSince = since
      }),
    )
    // With Redis away, sockets still get their snapshot, and the events
    // from Postgres: periodically, and all of them on its return.
    await next.learnStart().catch(() => null)
    this.current = next
    this.positioned.resolve()
  }

  /** Waits for the first shard read to settle and takes its entries; the other reads stay in flight. */
  private async readNext(): Promise<void> {
    const wake = this.wakes
    for (const s of this.shards) s.pending ??= this.read(s, wake)
    const settled = await Promise.race(this.shards.map((s) => s.pending!))
    const s = settled.shard
    s.pending = null
    if (settled.wake !== this.wakes || !this.running) return
    if ('error' in settled) {
      if (!s.failing) this.o.logger.warn('event hub cannot read the events stream; retrying', { stream: s.key, error: settled.error.message })
      s.failing = true
      markOutage(s)
      return
    }
    s.lastReadAt = Date.now()
    if (s.failing || s.outageSince !== null) {
      this.o.logger.info('event hub reading again; catching up from postgres', { stream: s.key })
      // Cleared only once the catch-up worked: if Postgres fails it, the next read tries again
      // (and reads these entries again, since the position has not moved).
      await this.current?.catchUpAfterOutage(s.outageSince ?? Date.now())
      s.failing = false
      s.outageSince = null
    }
    for (const [id, fields] of settled.entries?.[0]?.[1] ?? []) {
      s.id = String(id)
      const e = fieldsToEvent(fields)
      if (e) this.current?.offer(e)
    }
    // Bun writes what was published to its sockets after this turn. Reading
    // again only after that lets the events that came meanwhile go out in one
    // read and one fan-out; a read sent now would return with the first alone.
    if (settled.entries) await new Promise((r) => setImmediate(r))
  }

  /** One XREAD of a shard from its position (learnt first if it is not known yet); a failure waits a moment before it settles. */
  private async read(s: ShardTail, wake: number): Promise<ShardRead> {
    try {
      let from = s.id
      if (from === null) {
        from = await streamEndId(s.redis, s.key)
        if (wake !== this.wakes) return { shard: s, wake, entries: null }
        s.id = from
      }
      const entries = (await s.reader.read(s.redis.xreadBuffer('COUNT', 1000, 'BLOCK', BLOCK_MS, 'STREAMS', s.key, from))) as Entries
      return { shard: s, wake, entries }
    } catch (e) {
      if (this.running) await Bun.sleep(250)
      return { shard: s, wake, error: coerceError(e) }
    }
  }
}
