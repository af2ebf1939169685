import { afterAll, beforeAll, expect, test } from 'bun:test'
import { createDb } from '../src/infra/db'
import { createLogger } from '../src/infra/logger'
import { streamKeys } from '../src/infra/stream-keys'
import { fieldsToEvent } from '../src/domain/task-events/task-event'
import { createJobPipeline } from '../src/worker/pipeline'
import { builtinHandlers } from '../src/handlers/registry'
import { createTestDatabase, insertTaskRows, type TestDatabase } from './helpers/database'
import { deleteKeys, heldPushRedis, pushRecordingRedis, testRedis, uniquePrefix } from './helpers/redis'
import { eventually } from './helpers/poll'
import { z } from 'zod'
import { defineHandler } from '../src/handlers/handler'

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

/** Runs until the test opens the gate, reporting nothing meanwhile: no progress flush can take its claim's events. */
let opened = Promise.withResolvers<void>()
const gate = defineHandler({ payload: z.object({}), run: () => opened.promise })

/** A pipeline with no consumer of its own: the tests tell its intake when to claim, from a queue of their own. */
const testPipeline = (
  redis: ReturnType<typeof pushRecordingRedis>['redis'],
  db: ReturnType<typeof createDb>,
  o: { workerId: string; retryBaseMs: number; holdMs?: number; busyMs?: number },
) =>
  createJobPipeline({
    redis,
    keys,
    eventsMaxLen: 1000,
    logger: createLogger('error'),
    db,
    concurrency: 4,
    leaseMs: 30_000,
    defaultTimeoutMs: 10_000,
    handlers: { ...builtinHandlers({ demoWorkMs: 0, http: { allowedOrigins: [] } }), gate },
    queues: [o.workerId],
    ...o,
  })

/** The demo task's events on the stream, in stream order. */
async function streamed(taskId: number): Promise<{ status: string }[]> {
  const entries = (await admin.xrange(keys.shards[0]!.events, '-', '+')) as [string, string[]][]
  return entries.map(([, f]) => JSON.parse(fieldsToEvent(f)!.json)).filter((e) => e.task_id === taskId)
}

const demoTask = (queue: string, durationMs: number) => ({
  title: queue,
  type: 'demo',
  payload: JSON.stringify({ duration_ms: durationMs }),
  queue,
  enqueued_at: new Date(),
})

const gatedTask = (queue: string) => ({ title: 'gated', type: 'gate', payload: '{}', queue, enqueued_at: new Date() })

/**
 * Claims a gated task, then, after `pause`, a second: the second's PROCESSING
 * must reach the stream while both still run, each claim in a push of its own.
 */
async function secondClaimStreamedWhileRunning(workerId: string, o: { holdMs: number; busyMs: number }, pause: () => Promise<unknown>) {
  const { redis, pushes } = pushRecordingRedis()
  const db = createDb(database.url, 4)
  const pipeline = testPipeline(redis, db, { workerId, retryBaseMs: 50, ...o })
  opened = Promise.withResolvers<void>()
  const claimGated = async () => {
    const [task] = await insertTaskRows(database.db, [gatedTask(workerId)])
    expect(await pipeline.intake.fill(2)).toEqual({ claimed: 1 })
    await eventually(async () => (await streamed(task!.id)).length === 1, 10_000)
  }
  try {
    await claimGated()
    await pause()
    await claimGated()
    expect(pipeline.runner.running.size).toBe(2)
    expect(pushes).toHaveLength(2)
  } finally {
    opened.resolve()
    await pipeline.drain(1000)
    redis.disconnect()
    await db.destroy()
  }
}

// The first claim finds nothing flushed yet; the second comes once busyMs have passed since that flush: quiet is a matter of time.
test("a quiet worker's claim is streamed at once, however long the hold", () =>
  secondClaimStreamedWhileRunning('outbox-quiet', { holdMs: 60_000, busyMs: 50 }, () => Bun.sleep(100)))

// The second is claimed on a busy worker, beside a run that reports nothing: held, and nothing flushes.
test('a held claim is streamed after the hold when no flush comes to take it, not when its task ends', () =>
  secondClaimStreamedWhileRunning('outbox-hold', { holdMs: 20, busyMs: 60_000 }, async () => {}))

test("on a busy worker, a task that finishes at once has its claim's PROCESSING and its COMPLETED streamed in one push, in order", async () => {
  const { redis, pushes } = pushRecordingRedis()
  const db = createDb(database.url, 4)
  // Busy since the first flush, and held for as long as the test could take: only the completion's flush can take the claim's events.
  const pipeline = testPipeline(redis, db, { workerId: 'outbox-one-push', retryBaseMs: 50, holdMs: 60_000, busyMs: 60_000 })
  opened = Promise.withResolvers<void>()
  try {
    const [running] = await insertTaskRows(database.db, [gatedTask('outbox-one-push')])
    expect(await pipeline.intake.fill(4)).toEqual({ claimed: 1 })
    await eventually(async () => (await streamed(running!.id)).length === 1, 10_000)
    const [task] = await insertTaskRows(database.db, [demoTask('outbox-one-push', 0)])
    expect(await pipeline.intake.fill(3)).toEqual({ claimed: 1 })
    await eventually(async () => (await streamed(task!.id)).length === 2, 10_000)
    expect((await streamed(task!.id)).map((e) => e.status)).toEqual(['PROCESSING', 'COMPLETED'])
    // The gated task's claim, then the instant one's claim and completion together.
    expect(pushes).toHaveLength(2)
    opened.resolve()
    await eventually(async () => pipeline.runner.running.size === 0, 10_000)
    await pipeline.drain(1000)
    // drain returned only once the last push had reached Redis.
    expect((await streamed(running!.id)).map((e) => e.status)).toEqual(['PROCESSING', 'COMPLETED'])
  } finally {
    opened.resolve()
    redis.disconnect()
    await db.destroy()
  }
})

test("a task finishing while its claim's events are on their way to Redis is stored COMPLETED without waiting for that push; pushes go in order", async () => {
  const { redis, pushes, started, release } = heldPushRedis()
  const db = createDb(database.url, 4)
  const pipeline = testPipeline(redis, db, { workerId: 'outbox-overlap', retryBaseMs: 50 })
  opened = Promise.withResolvers<void>()
  try {
    const [task] = await insertTaskRows(database.db, [gatedTask('outbox-overlap')])
    expect(await pipeline.intake.fill(4)).toEqual({ claimed: 1 })
    // Opened once the claim's push is under way (held until released).
    await eventually(async () => started() === 1, 10_000)
    opened.resolve()
    await eventually(
      async () => (await db.selectFrom('tasks').select('status').where('id', '=', task!.id).executeTakeFirstOrThrow()).status === 'COMPLETED',
      10_000,
    )
    // Stored while the claim's push was still on its way.
    expect(pushes).toHaveLength(0)
    release()
    await eventually(async () => pipeline.runner.running.size === 0, 10_000)
    await pipeline.drain(1000)
    expect((await streamed(task!.id)).map((e) => e.status)).toEqual(['PROCESSING', 'COMPLETED'])
    expect(pushes).toHaveLength(2)
    expect(pushes[1]!.started).toBeGreaterThanOrEqual(pushes[0]!.ended)
  } finally {
    opened.resolve()
    release()
    redis.disconnect()
    await db.destroy()
  }
})

test("a retry claimed while the failed attempt's event is still on its way to Redis starts the next attempt", async () => {
  // The first attempt's run is still in the runner's hands (its push is held
  // back) when the retry is claimed: the second run must start beside it.
  const { redis, release } = heldPushRedis()
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
    release()
    await pipeline.drain(2000)
  } finally {
    release()
    redis.disconnect()
    await db.destroy()
  }
})
