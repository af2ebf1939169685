import { coerceError, type Logger } from '../../infra/logger'
import { createBlockingReader, streamEndId, type Redis } from '../../infra/redis'
import type { StreamKeys } from '../../infra/stream-keys'
import { fieldsToEvent } from '../../domain/task-events/task-event'
import type { Following } from './following'

export interface StreamTailOptions {
  redis: Redis
  keys: StreamKeys
  logger: Logger
  /** How long the tail keeps following after the last socket here left. */
  lingerMs: number
  /** Whether something in this process listens, which keeps the tail following as a socket does. */
  hasListeners(): boolean
  /** A following state for a new wake; isCurrent says whether the tail still holds it. */
  follow(isCurrent: () => boolean): Following
}

/**
 * Reads the events stream from this instance's own position (plain XREAD, so
 * every API instance sees every event) and hands each entry to the current
 * following state. It reads only while someone here is owed events; waking
 * starts over from the stream's end with a new following state.
 */
export class StreamTail {
  /** The state of this wake; null while idle and until the wake knows where the stream ends. */
  current: Following | null = null
  private running = false
  private loop: Promise<void> | null = null
  private readonly reader: ReturnType<typeof createBlockingReader>
  /** The id of the last stream entry read; null until this wake asked where the stream ends. */
  private streamId: string | null = null
  private failing = false
  /**
   * When the stream connection dropped (ioredis re-sends the read after
   * reconnecting, so no error says so); the catch-up once reading works
   * again starts from a little before it.
   */
  private outageSince: number | null = null
  /** Open sockets here; with none (and no listener, and the linger over) the stream is not read. */
  private joined = 0
  private lastLeftAt = -Infinity
  private wakeUp: (() => void) | null = null
  private positioned = Promise.withResolvers<void>()

  constructor(private readonly o: StreamTailOptions) {
    this.reader = createBlockingReader(o.redis, 10_000)
    o.redis.on('close', () => {
      if (this.running && this.current && this.outageSince === null) this.outageSince = Date.now()
    })
  }

  /** Resolves once the tail is idle or knows where the stream ends, so no later event is missed. */
  start(): Promise<void> {
    this.running = true
    return new Promise((resolve) => {
      this.loop = this.run(resolve)
    })
  }

  /** A socket open here, until the returned function is called: while there is one, the stream is read. */
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

  /** Settles once the tail follows the stream from a point no later than this call. */
  following(): Promise<void> {
    return this.positioned.promise
  }

  async close(): Promise<void> {
    if (!this.running) return
    this.running = false
    this.wake()
    this.reader.stop()
    this.o.redis.disconnect()
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
        const from = this.streamId ?? (await this.position())
        onReady()
        await this.readOnce(from)
      } catch (e) {
        if (!this.running) break
        if (!this.failing) this.o.logger.warn('event hub cannot read the events stream; retrying', { error: coerceError(e).message })
        this.failing = true
        this.outageSince ??= Date.now()
        await Bun.sleep(250)
      }
    }
  }

  /** Stops following and forgets everything of this wake, then waits for someone to be owed events. */
  private async goIdle(onReady: () => void): Promise<void> {
    if (this.current) {
      this.current = null
      this.positioned = Promise.withResolvers<void>()
      this.outageSince = null
    }
    this.streamId = null
    this.failing = false
    onReady()
    await new Promise<void>((r) => (this.wakeUp = r))
  }

  /** Finds where the stream ends; a wake (not a retry after a failed attempt) gets a new following state. */
  private async position(): Promise<string> {
    const next: Following = this.current ?? this.o.follow(() => this.current === next)
    try {
      return (this.streamId = await streamEndId(this.o.redis, this.o.keys.events))
    } finally {
      // With Redis away, sockets still get their snapshot, and the events
      // from Postgres: periodically, and all of them on its return.
      await next.learnStart().catch(() => null)
      this.current = next
      this.positioned.resolve()
    }
  }

  private async readOnce(from: string): Promise<void> {
    const res = (await this.reader.read(this.o.redis.xreadBuffer('COUNT', 1000, 'BLOCK', 1000, 'STREAMS', this.o.keys.events, from))) as
      | [Buffer, [Buffer, Buffer[]][]][]
      | null
    if (this.failing || this.outageSince !== null) {
      const since = this.outageSince ?? Date.now()
      this.failing = false
      this.outageSince = null
      this.o.logger.info('event hub reading again; catching up from postgres')
      await this.current?.catchUpAfterOutage(since)
    }
    for (const [id, fields] of res?.[0]?.[1] ?? []) {
      this.streamId = String(id)
      const e = fieldsToEvent(fields)
      if (e) this.current?.offer(e)
    }
    // Bun writes what was published to its sockets after this turn. Reading
    // again only after that lets the events that came meanwhile go out in one
    // read and one fan-out; a read sent now would return with the first alone.
    if (res) await new Promise((r) => setImmediate(r))
  }
}
