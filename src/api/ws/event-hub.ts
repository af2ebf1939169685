import type { Server } from 'bun'
import type { Db } from '../../infra/db'
import { coerceError, type Logger } from '../../infra/logger'
import { createBlockingReader, streamEndId, type Redis } from '../../infra/redis'
import type { StreamKeys } from '../../infra/stream-keys'
import { fieldsToEvent, type StreamedEvent, type TaskEventMessage } from '../../domain/messages'
import { createBatcher } from '../../infra/batcher'
import { wallMs } from '../../infra/clock'
import { findTaskSeqs, latestEventId, listNewestSeqsBetween, listEventsAfter, listEventsInGaps } from '../../domain/tasks/task.repository'
import { createEventSequencer, messageToStreamed, type EventSequencer } from './event-sequencer'

export const allTasksTopic = 'tasks'
export const taskTopic = (id: number) => `task:${id}`
/** One owner's share of the all-tasks feed (non-admin tokens subscribe here). */
export const ownerTopic = (ownerId: number) => `tasks:owner:${ownerId}`

type Listener = (e: StreamedEvent) => void
type Gap = { taskId: number; afterSeq: number; beforeSeq: number }

export interface EventHubOptions {
  redis: Redis
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
 * Tails the events stream from this instance's own position (plain XREAD, so
 * every API instance sees every event), puts each task's events in order
 * (filling gaps from Postgres), and publishes each event's JSON, as its
 * producer encoded it, to the task's topic and the all-tasks topic.
 *
 * Only while a socket is open here, or was a few seconds ago (or something listens): an instance with
 * none owes no event to anyone, and reading, decoding and ordering every
 * event for no one was a fifth of a busy create path's CPU. The first socket
 * to arrive wakes the hub, which starts over as it does at startup: from the
 * stream's end and Postgres' newest event, forgetting what it knew. The
 * socket waits for that (following()) before it reads its snapshot or
 * history, so what it reads and what the hub publishes meet without a gap.
 */
export function createEventHub(o: EventHubOptions) {
  const listeners = new Map<string, Set<Listener>>()
  /** Tasks with sockets here, with the newest seq those sockets were brought up to. */
  const watched = new Map<number, { sockets: number; seq: number }>()
  let server: Server<unknown> | null = null
  let backpressured: ((topic: string) => void) | null = null
  let running = false
  let loop: Promise<void> | null = null
  let resyncTimer: ReturnType<typeof setInterval> | null = null
  const reader = createBlockingReader(o.redis, 10_000)
  /** The newest task_events id published here; null until read from Postgres at start. */
  let lastCursor: number | null = null
  /**
   * When the stream connection dropped (ioredis re-sends the read after
   * reconnecting, so no error says so). Events committed just before, whose
   * XADD failed, have ids below the newest one published: the catch-up after
   * an outage starts from where the hub stood a few seconds before it began.
   */
  let outageSince: number | null = null
  const recentCursors: { at: number; cursor: number }[] = []
  o.redis.on('close', () => {
    if (running && following && outageSince === null) outageSince = Date.now()
  })

  /** Open sockets here; with none (and no listener) the stream is not read. */
  let joined = 0
  let lastLeftAt = -Infinity
  const lingerMs = o.lingerMs ?? 5000
  const hasAudience = () => joined > 0 || listeners.size > 0 || performance.now() - lastLeftAt < lingerMs
  let wake: (() => void) | null = null
  const woken = () => {
    wake?.()
    wake = null
  }
  /** Whether the hub follows the stream now (a position is known), and a promise settled once it does. */
  let following = false
  let positioned = Promise.withResolvers<void>()
  const nowFollowing = () => {
    following = true
    positioned.resolve()
  }
  const cursorBefore = (t: number) => recentCursors.findLast((r) => r.at <= t)?.cursor ?? recentCursors[0]?.cursor ?? lastCursor

  /**
   * Every read of missing events (the sequencer's gaps, the periodic checks)
   * goes through here: those that come together (a hub behind a flood of
   * events) share one query, one batch at a time. A task may be in a batch
   * twice, so each gets only its own range.
   */
  const gaps = createBatcher(async (batch: Gap[]) => {
    const found = Map.groupBy(await listEventsInGaps(o.db, batch), (m) => m.task_id)
    return batch.map((g) => (found.get(g.taskId) ?? []).filter((m) => m.seq > g.afterSeq && m.seq < g.beforeSeq))
  }, { maxBatch: 1000 })
  /** Publishes, through the sequencer, what Postgres has of each task past the seq given. */
  const fetchAfter = (behind: Map<number, number>, into: EventSequencer, owed: (m: TaskEventMessage) => boolean = () => true) =>
    Promise.all(
      [...behind].map(async ([taskId, afterSeq]) => {
        for (const m of await gaps.add({ taskId, afterSeq, beforeSeq: Infinity })) if (owed(m)) into.offer(messageToStreamed(m))
      }),
    )

  /**
   * A fresh sequencer each time the hub starts following: a gap the one before
   * was still filling when the hub went idle must not publish to the sockets
   * that woke it (they read their own history).
   */
  let generation = 0
  const newSequencer = () => {
    const mine = ++generation
    return createEventSequencer({
      publish: (e) => mine === generation && deliver(e),
      fetchMissing: (taskId, afterSeq, beforeSeq) => gaps.add({ taskId, afterSeq, beforeSeq }),
      onError: (e) => o.logger.warn('could not fill an event gap from postgres', { error: coerceError(e).message }),
    })
  }
  let sequencer = newSequencer()

  /** Stops following: forgets the position and every task, so waking starts over as at startup. */
  function goIdle() {
    following = false
    positioned = Promise.withResolvers<void>()
    lastCursor = null
    sequencer = newSequencer()
    recentCursors.length = 0
    outageSince = null
  }

  function deliver(e: StreamedEvent) {
    if (lastCursor !== null && e.cursor > lastCursor) lastCursor = e.cursor
    const topics = [taskTopic(e.taskId), allTasksTopic]
    if (e.ownerId !== null) topics.push(ownerTopic(e.ownerId))
    // Most events go to no socket here (nobody watches a task being created);
    // those are never decoded or encoded again.
    for (const topic of topics) {
      // -1: a socket of the topic now holds unsent data, which must be judged before Bun's own limit drops it.
      if (server && server.subscriberCount(topic) > 0 && server.publish(topic, e.json) === -1) backpressured?.(topic)
    }
    o.onPublish?.(e.storedAt === null ? null : wallMs() - e.storedAt)
    for (const topic of topics) {
      const set = listeners.get(topic)
      if (set) for (const l of set) l(e)
    }
  }

  /** The newest event when this instance began: what came before is owed to no socket here. */
  async function learnStart(): Promise<number> {
    if (lastCursor !== null) return lastCursor
    const into = sequencer
    const start = await latestEventId(o.db)
    // Read for a hub that has gone idle since: the one that woke learns its own.
    if (into !== sequencer) return start
    lastCursor = start
    into.startFrom(start)
    return start
  }

  /**
   * Publishes events Postgres has past the newest one published here: those
   * written while Redis was away, or whose XADD never happened. Events still
   * in flight on the stream are published now and dropped as repeats later.
   */
  async function catchUpFromPostgres(maxPages = 10, from: number | null = lastCursor) {
    const into = sequencer
    const start = await learnStart()
    let cursor = from ?? start
    for (let i = 0; i < maxPages; i++) {
      const page = await listEventsAfter(o.db, cursor, 1000)
      if (into !== sequencer) return
      for (const m of page) into.offer(messageToStreamed(m))
      cursor = page.at(-1)?.cursor ?? cursor
      lastCursor = Math.max(lastCursor ?? start, cursor)
      if (page.length < 1000) return
    }
  }

  async function run(onReady: () => void) {
    let cursor: string | null = null
    let failing = false
    while (running) {
      if (!hasAudience()) {
        if (following) goIdle()
        cursor = null
        failing = false
        onReady()
        await new Promise<void>((r) => (wake = r))
        continue
      }
      try {
        if (cursor === null) {
          try {
            cursor = await streamEndId(o.redis, o.keys.events)
          } finally {
            // With Redis away, sockets still get their snapshot, and the
            // events from Postgres: periodically, and all of them on its return.
            await learnStart().catch(() => null)
            nowFollowing()
          }
        }
        onReady()
        const res = (await reader.read(o.redis.xreadBuffer('COUNT', 1000, 'BLOCK', 1000, 'STREAMS', o.keys.events, cursor))) as [Buffer, [Buffer, Buffer[]][]][] | null
        if (failing || outageSince !== null) {
          const from = cursorBefore((outageSince ?? Date.now()) - 5000)
          failing = false
          outageSince = null
          o.logger.info('event hub reading again; catching up from postgres')
          await catchUpFromPostgres(Infinity, from)
        }
        for (const [id, fields] of res?.[0]?.[1] ?? []) {
          cursor = String(id)
          const e = fieldsToEvent(fields)
          if (e) sequencer.offer(e)
        }
        // Bun writes what was published to its sockets after this turn: 10,000
        // feed sockets take tens of ms. Reading again only after that lets the
        // events that came meanwhile go out in one read and one fan-out; a read
        // sent now would return with the first of them alone (measured with
        // 10,000 feed sockets: a task's third event waited for three fan-outs).
        if (res) await new Promise((r) => setImmediate(r))
      } catch (e) {
        if (!running) break
        if (!failing) o.logger.warn('event hub cannot read the events stream; retrying', { error: coerceError(e).message })
        failing = true
        outageSince ??= Date.now()
        await Bun.sleep(250)
      }
    }
  }

  /**
   * An event committed but never streamed (its producer died between commit
   * and XADD) is found here: events from one to three periods ago (old enough
   * not to be merely in flight) that the hub has not published are taken from
   * Postgres. Only each task's newest seq is read, so this stays cheap under load.
   */
  async function findUnstreamed() {
    const now = Date.now()
    const period = o.resyncMs ?? 2000
    const from = cursorBefore(now - 3 * period)
    const upto = cursorBefore(now - period)
    if (from === null || upto === null || upto <= from) return
    const into = sequencer
    const behind = new Map<number, number>()
    const unseen = new Set<number>()
    for (const { task_id, seq } of await listNewestSeqsBetween(o.db, from, upto, 100_000)) {
      const published = into.lastSeq(task_id)
      if (published === undefined) unseen.add(task_id)
      if (seq > (published ?? 0)) behind.set(task_id, published ?? 0)
    }
    // Of a task this hub has not seen, only the window's events are missing:
    // the older ones predate the hub's start (or an earlier look back), and
    // are owed to no socket here.
    await fetchAfter(behind, into, (m) => !unseen.has(m.task_id) || m.cursor > from)
  }

  async function resyncWatched() {
    const ids = [...watched.keys()]
    if (ids.length === 0) return
    const into = sequencer
    const behind = new Map<number, number>()
    for (const { id, seq } of await findTaskSeqs(o.db, ids)) {
      const published = into.lastSeq(id) ?? watched.get(id)?.seq ?? seq
      if (seq > published) behind.set(id, published)
    }
    await fetchAfter(behind, into)
  }

  return {
    /** Resolves once the hub knows where the stream ends, so no later event is missed. */
    start(srv: Server<unknown>): Promise<void> {
      server = srv
      running = true
      let resyncing = false
      resyncTimer = setInterval(() => {
        if (!following) return
        if (lastCursor !== null) recentCursors.push({ at: Date.now(), cursor: lastCursor })
        // About a minute of history is plenty to look back a few seconds before an outage.
        if (recentCursors.length > Math.ceil(60_000 / (o.resyncMs ?? 2000))) recentCursors.shift()
        if (resyncing) return
        resyncing = true
        // Each step works on the sequencer it began with: one left behind by going idle publishes nothing and moves no position.
        resyncWatched()
          .then(() => (following ? findUnstreamed() : undefined))
          .then(() => (following ? catchUpFromPostgres(1) : undefined))
          .catch(() => {})
          .finally(() => (resyncing = false))
      }, o.resyncMs ?? 2000)
      return new Promise((resolve) => {
        loop = run(resolve)
      })
    },
    /** Calls fn with every event published to topic until the returned function is called. */
    listen(topic: string, fn: Listener): () => void {
      let set = listeners.get(topic)
      if (!set) listeners.set(topic, (set = new Set()))
      set.add(fn)
      woken()
      return () => {
        set.delete(fn)
        if (set.size === 0) listeners.delete(topic)
      }
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
    join(): () => void {
      joined++
      woken()
      let left = false
      return () => {
        if (!left && --joined === 0) lastLeftAt = performance.now()
        left = true
      }
    },
    /** Settles once the hub follows the stream from a point no later than this call. */
    following: (): Promise<void> => positioned.promise,
    lastSeq: (taskId: number) => sequencer.lastSeq(taskId),
    /** Calls fn, at once, with each topic a publish left with a socket that has unsent data. */
    onBackpressure(fn: (topic: string) => void): void {
      backpressured = fn
    },
    async close() {
      if (!running) return
      running = false
      woken()
      if (resyncTimer) clearInterval(resyncTimer)
      reader.stop()
      o.redis.disconnect()
      await loop?.catch(() => {})
    },
  }
}

export type EventHub = ReturnType<typeof createEventHub>
