import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { changeTasks } from '../src/domain/tasks/task.repository'
import { pushToStreams } from '../src/domain/streams'
import { createLogger } from '../src/infra/logger'
import { streamKeys } from '../src/infra/stream-keys'
import { createEventHub, taskTopic, type EventHubOptions } from '../src/api/ws/event-hub'
import { changeToOutgoing, eventToFields, fieldsToEvent } from '../src/domain/task-events/task-event'
import { startFeedSession, startTaskSession } from '../src/api/ws/socket-session'
import { anonymous } from '../src/domain/tokens/token'
import { wallMs } from '../src/infra/clock'
import { testRedis } from './helpers/redis'
import { redisUrl } from './helpers/env'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'

let sys: TestSystem
beforeAll(async () => {
  sys = await startSystem({ workers: 0 })
})
afterAll(() => sys.stop())

describe('what the event hub sends to the server', () => {
  test('an event goes to the topics that have subscribers here, and only to those', async () => {
    const watchedId = (await postJson(`${sys.http}/api/tasks`, { title: 'watched' })).body.id
    const unwatchedId = (await postJson(`${sys.http}/api/tasks`, { title: 'unwatched' })).body.id
    const subscribed = new Set([taskTopic(watchedId)])
    const published: [string, unknown][] = []
    const server = {
      publish: (topic: string, data: unknown) => published.push([topic, data]),
      subscriberCount: (topic: string) => (subscribed.has(topic) ? 1 : 0),
    }
    const { hub, close } = await hubUnderTest(server)
    hub.join() // a socket here: without one the hub does not read the stream
    await hub.following()
    try {
      for (const id of [unwatchedId, watchedId]) await change(id)
      await eventually(async () => hub.lastSeq(watchedId) === 2 && hub.lastSeq(unwatchedId) === 2)
      // The feed has no subscriber, so only the watched task's own topic is sent to, as text.
      expect(published.map(([topic]) => topic)).toEqual([taskTopic(watchedId)])
      expect(JSON.parse(published[0]![1] as string)).toMatchObject({ task_id: watchedId, seq: 2, progress: 0.5 })
    } finally {
      await close()
    }
  })
})

describe('a hub with no socket open here', () => {
  test('reads no event until a socket joins, then follows the stream from there', async () => {
    const before: number = (await postJson(`${sys.http}/api/tasks`, { title: 'before' })).body.id
    const after: number = (await postJson(`${sys.http}/api/tasks`, { title: 'after' })).body.id
    const published: number[] = []
    let counted = 0
    const server = {
      subscriberCount: () => 1,
      publish: (_topic: string, data: string) => void published.push((JSON.parse(data) as { task_id: number }).task_id),
    }
    const { hub, close } = await hubUnderTest(server, { onPublish: () => counted++ })
    try {
      // Nobody here is owed this event: it is neither published nor counted, so it was never read.
      await change(before)
      await Bun.sleep(300)
      expect({ published, counted }).toEqual({ published: [], counted: 0 })
      // The first socket wakes the hub, which then follows from the stream's end: the earlier event stays unread.
      const leave = hub.join()
      await hub.following()
      await change(after)
      await eventually(async () => published.includes(after))
      expect([...new Set(published)]).toEqual([after])
      expect(hub.lastSeq(before)).toBeUndefined()
      leave()
    } finally {
      await close()
    }
  })

  test('a socket that comes back soon after the last one left (a reload) finds the hub still following; later it sleeps', async () => {
    const id: number = (await postJson(`${sys.http}/api/tasks`, { title: 'reloaded' })).body.id
    // Each start over asks the stream where it ends.
    let starts = 0
    const { hub, close } = await hubUnderTest({ subscriberCount: () => 0, publish: () => 0 }, { lingerMs: 2500 }, () => starts++)
    try {
      const leave = hub.join()
      await hub.following()
      await change(id)
      await eventually(async () => hub.lastSeq(id) === 2)
      leave()
      // Longer than a blocked read (1 s), after which a hub with no socket goes idle at once.
      await Bun.sleep(1300)
      const leaveAgain = hub.join()
      await hub.following()
      expect({ starts, seq: hub.lastSeq(id) }).toEqual({ starts: 1, seq: 2 })
      leaveAgain()
      // Past the linger it stops following and forgets; the next socket wakes it afresh.
      await eventually(async () => hub.lastSeq(id) === undefined, 6000)
      hub.join()
      await hub.following()
      expect(starts).toBe(2)
    } finally {
      await close()
    }
  })

  test('a socket that wakes the hub reads its snapshot only once the hub follows, so a change made meanwhile reaches it', async () => {
    const id: number = (await postJson(`${sys.http}/api/tasks`, { title: 'woken' })).body.id
    const { hub, close } = await slowWakingHub({ subscriberCount: () => 0, publish: () => 0 })
    const sent: { seq?: number }[] = []
    const ws = {
      data: { feed: 'task', taskId: id, principal: anonymous },
      readyState: WebSocket.OPEN,
      send: (s: string) => void sent.push(JSON.parse(s)),
      subscribe() {},
      close() {},
    }
    try {
      hub.join()
      const session = startTaskSession(ws as never, { db: sys.db, hub }, id)
      // Committed and streamed before the hub knows where the stream ends: the hub will not read it.
      await Bun.sleep(50)
      await change(id)
      await session
      expect(sent.map((m) => m.seq)).toContain(2)
    } finally {
      await close()
    }
  })
})

describe('a feed socket that wakes the hub', () => {
  test('gets its hello only once the hub follows, so a change made right after the hello reaches it', async () => {
    const id: number = (await postJson(`${sys.http}/api/tasks`, { title: 'fed' })).body.id
    const received: { kind?: string; task_id?: number; seq?: number }[] = []
    const record = (s: string) => void received.push(JSON.parse(s))
    const { hub, close } = await slowWakingHub({ subscriberCount: () => 1, publish: (_topic: string, s: string) => record(s) })
    const ws = { data: { feed: 'all', principal: anonymous }, readyState: WebSocket.OPEN, send: record, subscribe() {}, close() {} }
    try {
      hub.join()
      await startFeedSession(ws as never, { db: sys.db, hub })
      expect(received[0]?.kind).toBe('hello')
      // After the hello, so owed to this socket live.
      await change(id)
      await eventually(async () => received.some((m) => m.task_id === id && m.seq === 2), 2000)
    } finally {
      await close()
    }
  })
})

describe('events that arrive while a fan-out is being written', () => {
  test('go out together in the next read, not one read and one more fan-out each', async () => {
    const taskId = 424_242
    const keys = streamKeys(sys.prefix)
    const fields = (seq: number) =>
      eventToFields({
        message: {
          kind: 'change',
          task_id: taskId,
          owner_id: null,
          seq,
          status: 'PROCESSING',
          progress: 0,
          at: new Date().toISOString(),
          cursor: 1_000_000 + seq,
          detail: null,
        },
        storedAt: wallMs(),
      })
    // Bun writes what was published to its sockets after the turn that
    // published it; with thousands of sockets that takes tens of milliseconds,
    // while the worker streams the task's next events. Here that writing is a
    // blocked thread, during which another process XADDs the next two events.
    let fanOuts = 0
    let fanOutDue = false
    const published: { seq: number; fanOut: number }[] = []
    const server = {
      subscriberCount: () => 1,
      publish(_topic: string, data: string) {
        const { seq } = JSON.parse(data) as { seq: number }
        if (!published.some((p) => p.seq === seq)) published.push({ seq, fanOut: fanOuts })
        if (fanOutDue) return
        fanOutDue = true
        setImmediate(() => {
          fanOutDue = false
          if (fanOuts++ > 0) return
          for (const seq of [2, 3]) Bun.spawnSync(['redis-cli', '-u', redisUrl, 'XADD', keys.shards[0]!.events, '*', ...fields(seq)])
        })
      },
    }
    const redis = testRedis()
    const hub = createEventHub({ redis: () => redis, db: sys.db, keys, logger: createLogger('silent') })
    hub.join()
    await hub.start(server as never)
    await hub.following()
    try {
      await sys.redis.xadd(keys.shards[0]!.events, '*', ...fields(1))
      await eventually(async () => hub.lastSeq(taskId) === 3)
      expect(published.map((p) => p.seq)).toEqual([1, 2, 3])
      // Both came in during the first fan-out, so they make the second one together.
      expect(published.map((p) => p.fanOut)).toEqual([0, 1, 1])
    } finally {
      await hub.close()
      redis.disconnect()
    }
  })
})

describe('reading an events-stream entry', () => {
  test('raw bytes read the same as strings', () => {
    const strings = ['t', '7', 's', '3', 'c', '42', 'o', '', 'w', '1700000000000.125', 'd', '{"task_id":7,"note":"é"}']
    const fromBuffers = fieldsToEvent(strings.map((f) => Buffer.from(f)))!
    const fromStrings = fieldsToEvent(strings)!
    expect({ ...fromBuffers }).toEqual({ ...fromStrings })
    expect(fromBuffers).toMatchObject({ taskId: 7, seq: 3, cursor: 42, ownerId: null, storedAt: 1700000000000.125, json: '{"task_id":7,"note":"é"}' })
    expect(fieldsToEvent(['t', '7', 's', '3'])).toBeNull()
  })
})

/** Commits a change of the task and streams its event, as a worker would. */
async function change(id: number) {
  const deps = { redis: sys.redis, keys: streamKeys(sys.prefix), eventsMaxLen: 1000, logger: createLogger('silent') }
  await pushToStreams(deps, [], (await changeTasks(sys.db, { progress: 0.5 }, (eb) => eb('id', '=', id))).map(changeToOutgoing))
}

/**
 * A hub of its own over `server`, on a redis whose reads of where the stream
 * ends (one each time the hub starts over) run beforeStreamEnd first.
 */
async function hubUnderTest(server: object, options: Partial<EventHubOptions> = {}, beforeStreamEnd: () => unknown = () => {}) {
  const redis = testRedis()
  const xrevrange = redis.xrevrange.bind(redis)
  redis.xrevrange = (async (...args: Parameters<typeof xrevrange>) => {
    await beforeStreamEnd()
    return xrevrange(...args)
  }) as typeof redis.xrevrange
  const hub = createEventHub({ redis: () => redis, db: sys.db, keys: streamKeys(sys.prefix), logger: createLogger('silent'), ...options })
  await hub.start(server as never)
  return {
    hub,
    async close() {
      await hub.close()
      redis.disconnect()
    },
  }
}

/**
 * A hub whose redis takes 300 ms to say where the stream ends, with no
 * periodic check for 60 s: only the stream, or what a socket reads for
 * itself, can bring a change.
 */
const slowWakingHub = (server: object) => hubUnderTest(server, { resyncMs: 60_000 }, () => Bun.sleep(300))
