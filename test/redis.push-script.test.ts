import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { JOBS_MAXLEN, pushToStreams } from '../src/domain/streams'
import { fieldsToEvent, type OutgoingEvent, type TaskEventMessage } from '../src/domain/task-events/task-event'
import { createLogger } from '../src/infra/logger'
import { streamKeys } from '../src/infra/stream-keys'
import { deleteKeys, testRedis, uniquePrefix } from './helpers/redis'
import { eventually } from './helpers/poll'

const redis = testRedis()
const prefix = uniquePrefix()
const keys = streamKeys(prefix)
const deps = { redis, keys, eventsMaxLen: 1000, logger: createLogger('silent') }

beforeAll(() => redis.xgroup('CREATE', keys.shards[0]!.jobs, keys.workersGroup, '0', 'MKSTREAM'))
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
  const res = (await redis.xreadgroup('GROUP', keys.workersGroup, 'c1', 'COUNT', count, 'STREAMS', keys.shards[0]!.jobs, '>')) as
    | [string, [string, string[]][]][]
    | null
  return res?.[0]?.[1] ?? []
}

describe('pushToStreams: one script call per push', () => {
  test('jobs, events in order with their fields, and cancellation announcements all land', async () => {
    const announced: string[] = []
    const sub = testRedis()
    await sub.subscribe(keys.shards[0]!.cancels)
    sub.on('message', (_channel, id) => announced.push(id))
    try {
      const events = [event(1, 1, 'PENDING'), event(2, 1, 'PENDING'), event(1, 2, 'CANCELLED'), event(3, 4, 'FAILED', { deleted: true })]
      expect(await pushToStreams(deps, [1, 2], events.map(outgoing))).toBe(true)

      const jobs = await readGroup(10)
      expect(jobs.map(([, f]) => f)).toEqual([
        ['task_id', '1'],
        ['task_id', '2'],
      ])
      const streamed = ((await redis.xrange(keys.shards[0]!.events, '-', '+')) as [string, string[]][]).map(([, f]) => fieldsToEvent(f))
      expect(streamed.map((e) => e && JSON.parse(e.json))).toEqual(events)
      expect(streamed.map((e) => e && [e.taskId, e.seq, e.cursor, e.ownerId])).toEqual(events.map((e) => [e.task_id, e.seq, e.cursor, e.owner_id]))
      expect(streamed.map((e) => e?.storedAt)).toEqual(events.map((e) => outgoing(e).storedAt))
      // Pub/sub arrives on its own connection, after the script's reply: wait for it rather than for a fixed time.
      await eventually(async () => announced.length >= 2, 5000, 10, { what: 'the two cancellation announcements' })
      expect(announced).toEqual(['1', '3'])
    } finally {
      sub.disconnect()
    }
  })

  test('the jobs stream keeps no backlog: past JOBS_MAXLEN its oldest jobs are trimmed (workers find ready tasks in Postgres)', async () => {
    const trimmed = { ...deps, keys: streamKeys(`${prefix}trim:`) }
    const ids = Array.from({ length: JOBS_MAXLEN * 5 }, (_, i) => i + 1)
    expect(await pushToStreams(trimmed, ids, [])).toBe(true)
    const len = await redis.xlen(trimmed.keys.shards[0]!.jobs)
    expect(len).toBeGreaterThanOrEqual(JOBS_MAXLEN)
    expect(len).toBeLessThan(JOBS_MAXLEN * 2)
    // The newest are kept.
    const newest = (await redis.xrevrange(trimmed.keys.shards[0]!.jobs, '+', '-', 'COUNT', 1)) as [string, string[]][]
    expect(newest[0]?.[1]).toEqual(['task_id', String(ids.at(-1))])
  })

  test('Redis that forgot the script (a restart) is sent it again', async () => {
    await redis.script('FLUSH')
    expect(await pushToStreams(deps, [9], [])).toBe(true)
    expect((await readGroup(10)).map(([, f]) => f)).toEqual([['task_id', '9']])
  })

  test('a failure is reported, not thrown', async () => {
    const wrongType = { ...deps, keys: streamKeys(`${prefix}wrong:`) }
    await redis.set(wrongType.keys.shards[0]!.events, 'not a stream')
    expect(await pushToStreams(wrongType, [], [outgoing(event(5, 1, 'PENDING'))])).toBe(false)
  })
})
