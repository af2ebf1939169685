import { afterAll, afterEach, describe, expect, test } from 'bun:test'
import { pushToStreams } from '../src/domain/streams'
import { createLogger } from '../src/infra/logger'
import { streamKeys } from '../src/infra/stream-keys'
import { JobConsumer } from '../src/worker/job-consumer'
import { eventually } from './helpers/poll'
import { deleteKeys, testRedis, uniquePrefix } from './helpers/redis'

const redis = testRedis()
const prefix = uniquePrefix()
const keys = streamKeys(prefix, 3)
const logger = createLogger('silent')
const consumers: JobConsumer[] = []

/** A consumer of the three shards whose poll is long: a wait that ends early was ended by a job. */
async function consumer() {
  const c = new JobConsumer({ blocking: () => testRedis(), producer: redis, keys, consumer: `c${consumers.length}`, pollMs: 60_000, logger })
  consumers.push(c)
  await c.start()
  return c
}
/** The wait's result, or 'still waiting' if it has not ended within a while (a generous bound; the poll is a minute). */
const within = <T>(p: Promise<T>, ms = 10_000) => Promise.race([p, Bun.sleep(ms).then(() => 'still waiting' as const)])
const ring = (taskId: number) => pushToStreams({ redis, keys, eventsMaxLen: 100, logger }, [taskId], [])

afterEach(async () => {
  await Promise.all(consumers.splice(0).map((c) => c.stop()))
})
afterAll(async () => {
  await deleteKeys(redis, prefix)
  redis.disconnect()
})

describe('the job consumer over JOB_SHARDS streams', () => {
  test("a task's job goes to its shard's stream: id modulo the shard count", async () => {
    const c = await consumer()
    await c.stop()
    for (const id of [30, 31, 32]) await ring(id)
    const onShard = await Promise.all(keys.shards.map(async (s) => (await redis.xrange(s.jobs, '-', '+')).map(([, f]) => Number(f[1]))))
    expect(onShard).toEqual([[30], [31], [32]])
    for (const s of keys.shards) await redis.del(s.jobs)
  })

  test('a job on any shard ends the wait', async () => {
    const c = await consumer()
    for (const id of [40, 41, 42]) {
      const waiting = c.wait(10)
      await ring(id)
      expect(await within(waiting)).toBe(1)
    }
  })

  test('a job read while no one waited ends the next wait at once', async () => {
    const c = await consumer()
    const first = c.wait(10)
    await ring(51)
    expect(await within(first)).toBe(1)
    // The other shards' reads are still out: this job is taken by one of them, with no wait to hear it.
    await ring(52)
    await eventually(async () => (await redis.xlen(keys.shardOf(52).jobs)) === 0)
    expect(await within(c.wait(10))).toBe(1)
  })
})
