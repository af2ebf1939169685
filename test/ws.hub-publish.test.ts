import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { changeTasks } from '../src/domain/tasks/task.repository'
import { changeToOutgoing, pushToStreams } from '../src/domain/streams'
import { createLogger } from '../src/infra/logger'
import { streamKeys } from '../src/infra/stream-keys'
import { createEventHub, taskTopic } from '../src/api/ws/event-hub'
import { fieldsToEvent } from '../src/domain/messages'
import { testRedis } from './helpers/redis'
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
    const server = { publish: (topic: string, data: unknown) => published.push([topic, data]), subscriberCount: (topic: string) => (subscribed.has(topic) ? 1 : 0) }
    const redis = testRedis()
    const hub = createEventHub({ redis, db: sys.db, keys: streamKeys(sys.prefix), logger: createLogger('silent') })
    await hub.start(server as never)
    try {
      const deps = { redis: sys.redis, keys: streamKeys(sys.prefix), eventsMaxLen: 1000, logger: createLogger('silent') }
      for (const id of [unwatchedId, watchedId]) {
        await pushToStreams(deps, [], (await changeTasks(sys.db, { progress: 0.5 }, (eb) => eb('id', '=', id))).map(changeToOutgoing))
      }
      await eventually(async () => hub.lastSeq(watchedId) === 2 && hub.lastSeq(unwatchedId) === 2)
      // The feed has no subscriber, so only the watched task's own topic is sent to, as text.
      expect(published.map(([topic]) => topic)).toEqual([taskTopic(watchedId)])
      expect(JSON.parse(published[0]![1] as string)).toMatchObject({ task_id: watchedId, seq: 2, progress: 0.5 })
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
