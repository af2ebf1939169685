import { afterAll, afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { pushToStreams } from '../src/domain/streams'
import { createLogger } from '../src/infra/logger'
import { streamKeys } from '../src/infra/stream-keys'
import { JobConsumer } from '../src/worker/job-consumer'
import { eventually } from './helpers/poll'
import { deleteKeys, testRedis, uniquePrefix } from './helpers/redis'

const redis = testRedis()
// Streams of their own for each test: a read a stopped consumer still had out at Redis when the next test pushed
// would take that test's jobs (it did in a busy CI run: a hand-back came up one short).
const prefixes: string[] = []
let keys = streamKeys(uniquePrefix(), 3)
beforeEach(() => {
  prefixes.push(uniquePrefix())
  keys = streamKeys(prefixes.at(-1)!, 3)
})
const logger = createLogger('silent')
const consumers: JobConsumer[] = []

/** A consumer of the three shards whose poll is long: a wait that ends early was ended by a job. */
async function consumer(
  o: {
    room?: () => number
    holds?: (taskId: number) => boolean
    pollMs?: number
    watchdogFloorMs?: number
    producer?: typeof redis
    deleteAfterMs?: number
  } = {},
) {
  const c = new JobConsumer({
    blocking: () => testRedis(),
    producer: o.producer ?? redis,
    deleteAfterMs: o.deleteAfterMs,
    keys,
    consumer: `c${consumers.length}`,
    pollMs: o.pollMs ?? 60_000,
    logger,
    room: o.room,
    holds: o.holds,
    watchdogFloorMs: o.watchdogFloorMs,
  })
  consumers.push(c)
  await c.start()
  return c
}
/** The wait's result, or 'still waiting' if it has not ended within a while (a generous bound; the poll is a minute). */
const within = <T>(p: Promise<T>, ms = 10_000) => Promise.race([p, Bun.sleep(ms).then(() => 'still waiting' as const)])
const ring = (taskId: number) => pushToStreams({ redis, keys, eventsMaxLen: 100, logger }, [taskId], [])

/** Which of these tasks' jobs were read (the group delivered them) and written again: on the stream after what was delivered. */
async function handedBack(...taskIds: number[]): Promise<number[]> {
  const jobs = keys.shardOf(taskIds[0]!).jobs
  const [group] = (await redis.xinfo('GROUPS', jobs)) as string[][]
  const last = group![group!.indexOf('last-delivered-id') + 1]!
  const newer = (a: string, b: string) => {
    const [x, y] = [a.split('-').map(BigInt), b.split('-').map(BigInt)]
    return x[0]! > y[0]! || (x[0] === y[0] && x[1]! > y[1]!)
  }
  if (last === '0-0') return []
  const entries = await redis.xrange(jobs, '-', '+')
  return entries.flatMap(([id, f]) => (taskIds.includes(Number(f[1])) && newer(id, last) ? [Number(f[1])] : []))
}

afterEach(async () => {
  await Promise.all(consumers.splice(0).map((c) => c.stop()))
})
afterAll(async () => {
  for (const prefix of prefixes) await deleteKeys(redis, prefix)
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
      c.lookingInPostgres()
    }
  })

  test('a job read while no one waited ends the next wait at once', async () => {
    const c = await consumer()
    const first = c.wait(10)
    await ring(51)
    expect(await within(first)).toBe(1)
    c.lookingInPostgres()
    // The other shards' reads are still out: this job is taken by one of them, with no wait to hear it.
    await ring(52)
    await eventually(async () => (await redis.xlen(keys.shardOf(52).jobs)) === 0)
    expect(await within(c.wait(10))).toBe(1)
  })

  test('a job read while the pump looks in Postgres ends the next wait, though a wait it stopped listening to was still out', async () => {
    const c = await consumer()
    // The pump stops listening to this wait (a run ended first) and looks in Postgres; that look may
    // have started before the next task committed, so its job, read meanwhile, must end the next wait.
    void c.wait(10)
    c.lookingInPostgres()
    await ring(53)
    await eventually(async () => (await redis.xlen(keys.shardOf(53).jobs)) === 0)
    expect(await within(c.wait(10))).toBe(1)
  })

  test('a job a leftover read takes while the worker is full goes back on its stream, for a worker with room', async () => {
    let room = 10
    const c = await consumer({ room: () => room })
    const first = c.wait(10)
    await ring(60)
    expect(await within(first)).toBe(1)
    // Full now: the other shards' reads are still out, and one of them takes the next job.
    room = 0
    await ring(61)
    await eventually(async () => (await handedBack(61)).length === 1)
    const other = await consumer()
    expect(await within(other.wait(10))).toBeGreaterThanOrEqual(1)
  })

  test('a read of more jobs than free slots keeps as many as fit and hands back the rest', async () => {
    // Three jobs on one shard before the read: it takes all three, with room for one.
    for (const id of [90, 93, 96]) await ring(id)
    const c = await consumer({ room: () => 1 })
    expect(await within(c.wait(10))).toBe(1)
    await eventually(async () => (await handedBack(90, 93, 96)).length === 2)
    // Both go to a worker with room (and leave no job behind for the tests after this one).
    const other = await consumer()
    expect(await within(other.wait(10))).toBe(2)
  })

  test('the jobs of reads close together are deleted with one XDEL, and stop deletes what is still pending', async () => {
    // The test's own Redis client, counting the XDELs sent through it.
    let xdels = 0
    const producer = new Proxy(redis, {
      get: (target, key) =>
        key === 'xdel'
          ? (...args: Parameters<typeof redis.xdel>) => {
              xdels++
              return target.xdel(...args)
            }
          : Reflect.get(target, key, target),
    })
    const c = await consumer({ producer, deleteAfterMs: 60_000 })
    const jobs = keys.shardOf(100).jobs
    const before = await redis.xlen(jobs)
    for (const id of [100, 103, 106, 109]) {
      const waiting = c.wait(10)
      await ring(id)
      expect(await within(waiting)).toBe(1)
      c.lookingInPostgres()
    }
    // Four reads, each a round trip of its own; their deletes wait to go together.
    expect(xdels).toBe(0)
    expect(await redis.xlen(jobs)).toBe(before + 4)
    await c.stop()
    expect(xdels).toBe(1)
    expect(await redis.xlen(jobs)).toBe(before)
  })

  test('a job for a task the worker holds wakes nothing: the read goes on, and ends with the next job', async () => {
    const held = new Set([113])
    const c = await consumer({ holds: (id) => held.has(id) })
    let ended = false
    const waiting = c.wait(10).finally(() => (ended = true))
    // A held task's job (113), read and deleted (a tenth of a second after its read): the wait is still on.
    await ring(113)
    await eventually(async () => (await redis.xlen(keys.shardOf(113).jobs)) === 0)
    expect(ended).toBe(false)
    // A new task's job on the same shard (116) ends it.
    await ring(116)
    expect(await within(waiting)).toBe(1)
  })

  test('jobs of held tasks arriving all along do not stretch a wait past the poll: it ends with none', async () => {
    const c = await consumer({ holds: () => true, pollMs: 1_000 })
    let ended = false
    const waiting = c.wait(10).finally(() => (ended = true))
    // On every shard: each read takes one and reads on; were the poll counted again from each read, these would keep it going.
    const ringing = (async () => {
      for (let id = 130; !ended; id++) {
        await ring(id)
        await Bun.sleep(100)
      }
    })()
    expect(await within(waiting)).toBe(0)
    await ringing
  })

  test('a job read during a look that then claimed its task does not end the next wait', async () => {
    const held = new Set<number>()
    const c = await consumer({ holds: (id) => held.has(id), pollMs: 1_000 })
    // As in the pump: a wait it stopped listening to is still out when it looks, and takes a job meanwhile...
    void c.wait(10)
    c.lookingInPostgres()
    await ring(120)
    await eventually(async () => (await redis.xlen(keys.shardOf(120).jobs)) === 0)
    // ...whose task that look claimed: the next wait lasts the poll instead of ending at once for an empty look.
    held.add(120)
    expect(await within(c.wait(10))).toBe(0)
  })

  test('stop ends a wait even when a read outlives its connection (a cluster client can)', async () => {
    // A connection whose reads never settle, however it is closed: what the stop must not wait for.
    const deaf = { xreadgroup: () => new Promise(() => {}), disconnect() {} } as unknown as ReturnType<typeof testRedis>
    const c = new JobConsumer({ blocking: () => deaf, producer: redis, keys, consumer: 'deaf', pollMs: 60_000, logger })
    await c.start()
    const waiting = c.wait(10)
    await c.stop()
    expect(await within(waiting, 2000)).toBe(0)
  })

  test('a poll longer than the read watchdog is waited out, and a job late in it still ends the wait', async () => {
    const c = await consumer({ pollMs: 8_000, watchdogFloorMs: 1_000 })
    const waiting = c.wait(10)
    // Past the watchdog's floor: a watchdog that ignored the poll would have cut this read.
    await Bun.sleep(2_500)
    await ring(70)
    expect(await within(waiting, 4_000)).toBe(1)
  }, 30_000)
})
