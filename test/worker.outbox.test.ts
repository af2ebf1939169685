import { afterAll, beforeAll, expect, test } from 'bun:test'
import { createDb } from '../src/infra/db'
import { createLogger } from '../src/infra/logger'
import { streamKeys } from '../src/infra/stream-keys'
import { fieldsToEvent } from '../src/domain/task-events/task-event'
import { createJobPipeline } from '../src/worker/pipeline'
import { builtinHandlers } from '../src/handlers/registry'
import { createTestDatabase, insertTaskRows, type TestDatabase } from './helpers/database'
import { deleteKeys, slowPushRedis, testRedis, uniquePrefix } from './helpers/redis'
import { eventually } from './helpers/poll'

let database: TestDatabase
const prefix = uniquePrefix()
const keys = streamKeys(prefix)
const admin = testRedis()
beforeAll(async () => {
  database = await createTestDatabase()
  await admin.xgroup('CREATE', keys.shards[0]!.jobs, keys.workersGroup, '0', 'MKSTREAM')
})
afterAll(async () => {
  await deleteKeys(admin, prefix)
  admin.disconnect()
  await database.drop()
})

/** A pipeline with no consumer of its own: the tests tell its intake when to claim, from a queue of their own. */
const testPipeline = (redis: ReturnType<typeof slowPushRedis>['redis'], db: ReturnType<typeof createDb>, o: { workerId: string; retryBaseMs: number }) =>
  createJobPipeline({
    redis,
    keys,
    eventsMaxLen: 1000,
    logger: createLogger('error'),
    db,
    concurrency: 4,
    leaseMs: 30_000,
    defaultTimeoutMs: 10_000,
    handlers: builtinHandlers({ demoWorkMs: 0, http: { allowedOrigins: [] } }),
    queues: [o.workerId],
    ...o,
  })

test("a task that finishes at once is stored COMPLETED while its claim's events are still on their way to Redis; the stream keeps their order, and drain waits for the last push", async () => {
  const delayMs = 400
  const { redis, pushes } = slowPushRedis(delayMs)
  const db = createDb(database.url, 4)
  const pipeline = testPipeline(redis, db, { workerId: 'outbox-test', retryBaseMs: 50 })
  const { runner } = pipeline
  try {
    const [task] = await insertTaskRows(database.db, [
      { title: 'instant', type: 'demo', payload: JSON.stringify({ duration_ms: 0 }), queue: 'outbox-test', enqueued_at: new Date() },
    ])
    expect(await pipeline.intake.fill(4)).toEqual({ claimed: 1 })
    await eventually(async () => runner.running.size === 0, 5000)
    await pipeline.drain(1000)

    // drain returned only once the COMPLETED event had reached Redis.
    const entries = (await admin.xrange(keys.shards[0]!.events, '-', '+')) as [string, string[]][]
    const streamed = entries.map(([, f]) => JSON.parse(fieldsToEvent(f)!.json)).filter((e) => e.task_id === task!.id)
    expect(streamed.map((e) => e.status)).toEqual(['PROCESSING', 'COMPLETED'])

    // The finish did not wait for the claim's push: it was stored before that push ended.
    const row = await db.selectFrom('tasks').select(['status', 'finished_at']).where('id', '=', task!.id).executeTakeFirstOrThrow()
    expect(row.status).toBe('COMPLETED')
    expect(pushes).toHaveLength(2)
    expect(row.finished_at!.getTime()).toBeLessThan(pushes[0]!.ended)
    // ...and the pushes themselves went one at a time, in order.
    expect(pushes[1]!.started).toBeGreaterThanOrEqual(pushes[0]!.ended)
  } finally {
    redis.disconnect()
    await db.destroy()
  }
})

test("a retry claimed while the failed attempt's event is still on its way to Redis starts the next attempt", async () => {
  // The first attempt's run is still in the runner's hands (its push is held
  // back) when the retry is claimed: the second run must start beside it.
  const { redis } = slowPushRedis(400)
  const db = createDb(database.url, 4)
  const pipeline = testPipeline(redis, db, { workerId: 'retry-test', retryBaseMs: 1 })
  const { runner } = pipeline
  const status = async (id: number) => db.selectFrom('tasks').select(['status', 'attempts']).where('id', '=', id).executeTakeFirstOrThrow()
  try {
    const [task] = await insertTaskRows(database.db, [
      {
        title: 'fails twice',
        type: 'demo',
        payload: JSON.stringify({ fail: true, duration_ms: 0 }),
        max_attempts: 2,
        queue: 'retry-test',
        enqueued_at: new Date(),
      },
    ])
    const id = task!.id
    // What the sweeper does once the backoff has passed: the task is ready again.
    const deliver = async () => {
      await db.updateTable('tasks').set({ enqueued_at: new Date() }).where('id', '=', id).where('status', '=', 'PENDING').execute()
      expect(await pipeline.intake.fill(4)).toEqual({ claimed: 1 })
    }
    await deliver()
    // The first attempt's failure is stored (PENDING again, due at once) while its push is held back.
    await eventually(async () => (await status(id)).status === 'PENDING' && (await status(id)).attempts === 1, 5000)
    expect(runner.running.has(id)).toBe(true)
    await deliver()
    await eventually(async () => (await status(id)).status === 'FAILED', 5000)
    expect(await status(id)).toEqual({ status: 'FAILED', attempts: 2 })
    await pipeline.drain(2000)
  } finally {
    redis.disconnect()
    await db.destroy()
  }
})
