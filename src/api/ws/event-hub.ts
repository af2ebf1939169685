import type { Server } from 'bun'
import type { Db } from '../../infra/db'
import type { Logger } from '../../infra/logger'
import type { Redis } from '../../infra/redis'
import type { Shard, StreamKeys } from '../../infra/stream-keys'
import { FanOut, type Listener } from './fan-out'
import { Following } from './following'
import { StreamTail } from './stream-tail'

export { allTasksTopic, ownerTopic, taskTopic } from './fan-out'

export interface EventHubOptions {
  /** A new blocking connection for a shard's events stream. */
  redis: (shard: Shard) => Redis
  db: Db
  keys: StreamKeys
  logger: Logger
  /** How often watched tasks are compared with Postgres, to catch an event the stream lost. */
  resyncMs?: number
  /** Called once per event published here, with how late it is since its commit (null if unknown). */
  onPublish?: (lateMs: number | null) => void
  /**
   * How long the hub keeps following after the last socket here left: a page
   * reload or a client's reconnect finds it following, so its snapshot waits
   * for no wake-up and the hub keeps what it knew of each task.
   */
  lingerMs?: number
}

/**
 * Tails the events stream (stream-tail.ts), puts each task's events in order
 * filling gaps from Postgres (following.ts), and publishes each event's JSON,
 * as its producer encoded it, to the task's topic and the feeds (fan-out.ts).
 *
 * Only while a socket is open here, or was a few seconds ago (or something
 * listens): an instance with none owes no event to anyone, and reading,
 * decoding and ordering every event for no one is a real share of a busy
 * create path's CPU. The first socket to arrive wakes the hub, which starts
 * over as it does at startup: from the stream's end and Postgres' newest
 * event, with a new following state. The socket waits for that (following())
 * before it reads its snapshot or history, so what it reads and what the hub
 * publishes meet without a gap.
 */
export function createEventHub(o: EventHubOptions) {
  const resyncMs = o.resyncMs ?? 2000
  const fanOut = new FanOut(o.onPublish)
  /** Tasks with sockets here, with the newest seq those sockets were brought up to. */
  const watched = new Map<number, { sockets: number; seq: number }>()
  const tail = new StreamTail({
    redis: o.redis,
    keys: o.keys,
    logger: o.logger,
    lingerMs: o.lingerMs ?? 5000,
    hasListeners: () => fanOut.hasListeners(),
    follow: (isCurrent) => new Following({ db: o.db, logger: o.logger, resyncMs, watched, isCurrent, publish: (e) => fanOut.publish(e) }),
  })
  let resyncTimer: ReturnType<typeof setInterval> | null = null

  return {
    /** Resolves once the hub knows where the stream ends, so no later event is missed. */
    start(srv: Server<unknown>): Promise<void> {
      fanOut.attach(srv)
      resyncTimer = setInterval(() => tail.current?.tick(), resyncMs)
      return tail.start()
    },
    /** Calls fn with every event published to topic until the returned function is called. */
    listen(topic: string, fn: Listener): () => void {
      const stop = fanOut.listen(topic, fn)
      tail.wake()
      return stop
    },
    /** Marks a task as having subscribers here, so a lost event of it is looked for. */
    watch(taskId: number, seq: number): () => void {
      const w = watched.get(taskId) ?? { sockets: 0, seq }
      watched.set(taskId, { sockets: w.sockets + 1, seq: Math.max(w.seq, seq) })
      return () => {
        const now = watched.get(taskId)
        if (!now || now.sockets <= 1) watched.delete(taskId)
        else now.sockets--
      }
    },
    /** A socket open here, until the returned function is called: while there is one, the hub reads the stream. */
    join: (): (() => void) => tail.join(),
    /** Settles once the hub follows the stream from a point no later than this call. */
    following: (): Promise<void> => tail.following(),
    lastSeq: (taskId: number): number | undefined => tail.current?.lastSeq(taskId),
    /** Calls fn, at once, with each topic a publish left with a socket that has unsent data. */
    onBackpressure: (fn: (topic: string) => void): void => fanOut.onBackpressure(fn),
    async close() {
      if (resyncTimer) clearInterval(resyncTimer)
      await tail.close()
    },
  }
}

export type EventHub = ReturnType<typeof createEventHub>
