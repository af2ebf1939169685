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
  await admin.xgroup('CREATE', keys.jobs, keys.workersGroup, '0', 'MKSTREAM')
})
afterAll(async () => {
  await deleteKeys(admin, prefix)
  admin.disconnect()
  await database.drop()
})

/** A pipeline with no consumer of its own: the tests hand its intake jobs; dead letters go nowhere. */
const testPipeline = (redis: ReturnType<typeof slowPushRedis>['redis'], db: ReturnType<typeof createDb>, o: { workerId: string; retryBaseMs: number }) =>
  createJobPipeline(
    {
      redis,
      keys,
      eventsMaxLen: 1000,
      logger: createLogger('error'),
      db,
      concurrency: 4,
      leaseMs: 30_000,
      defaultTimeoutMs: 10_000,
      handlers: builtinHandlers({ demoWorkMs: 0, http: { allowedOrigins: [] } }),
      ...o,
    },
    { deadLetter: async () => {}, touch: async () => {} },
  )
const job = (streamId: string, taskId: number) => ({ jobs: [{ streamId, taskId }], poison: [] })

test("a task that finishes at once is stored COMPLETED while its claim's events are still on their way to Redis; the stream keeps their order, and drain waits for the last push", async () => {
  const delayMs = 400
  const { redis, pushes } = slowPushRedis(delayMs)
  const db = createDb(database.url, 4)
  const pipeline = testPipeline(redis, db, { workerId: 'outbox-test', retryBaseMs: 50 })
  const { runner } = pipeline
  try {
    const [task] = await insertTaskRows(database.db, [{ title: 'instant', type: 'demo', payload: JSON.stringify({ duration_ms: 0 }) }])
    const jobId = (await admin.xadd(keys.jobs, '*', 'task_id', String(task!.id)))!
    await pipeline.intake.take(job(jobId, task!.id))
    await eventually(async () => runner.running.size === 0, 5000)
    await pipeline.drain(1000)

    // drain returned only once the COMPLETED event and the ack had reached Redis.
    const entries = (await admin.xrange(keys.events, '-', '+')) as [string, string[]][]
    const streamed = entries.map(([, f]) => JSON.parse(fieldsToEvent(f)!.json)).filter((e) => e.task_id === task!.id)
    expect(streamed.map((e) => e.status)).toEqual(['PROCESSING', 'COMPLETED'])
    expect(await admin.xlen(keys.jobs)).toBe(0)

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

test("a retry's job that arrives while the failed attempt's event is still on its way to Redis starts the next attempt", async () => {
  // Before, the worker took that job for a duplicate of the attempt still in
  // its hands and acknowledged it with it: the task sat PENDING, marked as
  // queued, until the sweeper's 10 s check for lost jobs.
  const { redis } = slowPushRedis(400)
  const db = createDb(database.url, 4)
  const pipeline = testPipeline(redis, db, { workerId: 'retry-test', retryBaseMs: 1 })
  const { runner } = pipeline
  const status = async (id: number) => db.selectFrom('tasks').select(['status', 'attempts']).where('id', '=', id).executeTakeFirstOrThrow()
  try {
    const [task] = await insertTaskRows(database.db, [
      { title: 'fails twice', type: 'demo', payload: JSON.stringify({ fail: true, duration_ms: 0 }), max_attempts: 2 },
    ])
    const id = task!.id
    const deliver = async () => {
      const streamId = (await admin.xadd(keys.jobs, '*', 'task_id', String(id)))!
      await pipeline.intake.take(job(streamId, id))
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
