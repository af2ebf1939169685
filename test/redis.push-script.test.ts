import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { pushToStreams } from '../src/domain/streams'
import { fieldsToEvent, type OutgoingEvent, type TaskEventMessage } from '../src/domain/task-events/task-event'
import { createLogger } from '../src/infra/logger'
import { streamKeys } from '../src/infra/stream-keys'
import { deleteKeys, testRedis, uniquePrefix } from './helpers/redis'
import { eventually } from './helpers/poll'

const redis = testRedis()
const prefix = uniquePrefix()
const keys = streamKeys(prefix)
const deps = { redis, keys, eventsMaxLen: 1000, logger: createLogger('silent') }

beforeAll(() => redis.xgroup('CREATE', keys.jobs, keys.workersGroup, '0', 'MKSTREAM'))
afterAll(async () => {
  await deleteKeys(redis, prefix)
  redis.disconnect()
})

const event = (taskId: number, seq: number, status: TaskEventMessage['status'], extra: Partial<TaskEventMessage> = {}): TaskEventMessage => ({
  kind: 'change',
  task_id: taskId,
  owner_id: taskId % 2 ? 7 : null,
  seq,
  status,
  progress: 0,
  at: new Date().toISOString(),
  cursor: taskId * 10 + seq,
  detail: { why: 'test' },
  ...extra,
})

/** A commit time of its own per event, to see each one travel with its entry. */
const outgoing = (message: TaskEventMessage): OutgoingEvent => ({ message, storedAt: 1_700_000_000_000.25 + message.cursor })

const readGroup = async (count: number) => {
  const res = (await redis.xreadgroup('GROUP', keys.workersGroup, 'c1', 'COUNT', count, 'STREAMS', keys.jobs, '>')) as [string, [string, string[]][]][] | null
  return res?.[0]?.[1] ?? []
}

describe('pushToStreams: one script call per push', () => {
  test('jobs, events in order with their fields, cancellation announcements and acks all land', async () => {
    const announced: string[] = []
    const sub = testRedis()
    await sub.subscribe(keys.cancels)
    sub.on('message', (_channel, id) => announced.push(id))
    try {
      const events = [event(1, 1, 'PENDING'), event(2, 1, 'PENDING'), event(1, 2, 'CANCELLED'), event(3, 4, 'FAILED', { deleted: true })]
      expect(await pushToStreams(deps, [1, 2], events.map(outgoing))).toBe(true)

      const jobs = await readGroup(10)
      expect(jobs.map(([, f]) => f)).toEqual([
        ['task_id', '1'],
        ['task_id', '2'],
      ])
      const streamed = ((await redis.xrange(keys.events, '-', '+')) as [string, string[]][]).map(([, f]) => fieldsToEvent(f))
      expect(streamed.map((e) => e && JSON.parse(e.json))).toEqual(events)
      expect(streamed.map((e) => e && [e.taskId, e.seq, e.cursor, e.ownerId])).toEqual(events.map((e) => [e.task_id, e.seq, e.cursor, e.owner_id]))
      expect(streamed.map((e) => e?.storedAt)).toEqual(events.map((e) => outgoing(e).storedAt))
      // Pub/sub arrives on its own connection, after the script's reply: wait for it rather than for a fixed time.
      await eventually(async () => announced.length >= 2, 5000, 10, { what: 'the two cancellation announcements' })
      expect(announced).toEqual(['1', '3'])

      // Acks alone: XACK clears the pending list, XDEL the stream.
      expect(
        await pushToStreams(
          deps,
          [],
          [],
          jobs.map(([id]) => id),
        ),
      ).toBe(true)
      expect(await redis.xlen(keys.jobs)).toBe(0)
      expect(((await redis.xpending(keys.jobs, keys.workersGroup)) as [number])[0]).toBe(0)
    } finally {
      sub.disconnect()
    }
  })

  test('more acks than one unpack takes (they go in chunks of 1000)', async () => {
    const ids = Array.from({ length: 9000 }, (_, i) => i + 1)
    expect(await pushToStreams(deps, ids, [])).toBe(true)
    const jobs = await readGroup(10_000)
    expect(jobs).toHaveLength(9000)
    expect(
      await pushToStreams(
        deps,
        [],
        [],
        jobs.map(([id]) => id),
      ),
    ).toBe(true)
    expect(await redis.xlen(keys.jobs)).toBe(0)
    expect(((await redis.xpending(keys.jobs, keys.workersGroup)) as [number])[0]).toBe(0)
  })

  test('Redis that forgot the script (a restart) is sent it again', async () => {
    await redis.script('FLUSH')
    expect(await pushToStreams(deps, [9], [])).toBe(true)
    expect((await readGroup(10)).map(([, f]) => f)).toEqual([['task_id', '9']])
  })

  test('a failure is reported, not thrown: the caller leaves the task to the sweeper', async () => {
    const wrongType = { ...deps, keys: streamKeys(`${prefix}wrong:`) }
    await redis.set(wrongType.keys.events, 'not a stream')
    expect(await pushToStreams(wrongType, [], [outgoing(event(5, 1, 'PENDING'))])).toBe(false)
  })
})
