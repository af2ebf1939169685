import { afterAll, beforeAll, expect, test } from 'bun:test'
import { createDb } from '../src/infra/db'
import { createLogger } from '../src/infra/logger'
import { streamKeys } from '../src/infra/stream-keys'
import { createJobPipeline, type Wakeups } from '../src/worker/pipeline'
import type { QueueLimit } from '../src/domain/tasks/task-claim.repository'
import { builtinHandlers } from '../src/handlers/registry'
import { createTestDatabase, insertTaskRows, type TestDatabase } from './helpers/database'
import { deleteKeys, testRedis, uniquePrefix } from './helpers/redis'
import { eventually } from './helpers/poll'

/**
 * When the pump looks in Postgres: on a job, its poll, or a run's end. A run's
 * end sends no job, yet it may free a limited queue's slot, and a ready task
 * whose job another worker read (one serving other queues or types) has only
 * the looks of the workers that can take it. In a fleet of alike workers
 * without limits, a run's end is no reason to look: that look claimed nothing.
 */

let database: TestDatabase
const prefix = uniquePrefix()
const redis = testRedis()
beforeAll(async () => {
  database = await createTestDatabase()
})
afterAll(async () => {
  await deleteKeys(redis, prefix)
  redis.disconnect()
  await database.drop()
})

/** Wakeups that count the pump's looks and never wake it: no job comes, the poll never ends. */
class CountingWakeups implements Wakeups {
  reading = true
  looks = 0
  private stopped: (() => void) | undefined
  wait(): Promise<number> {
    // A look still running when the test stopped the pump asks for its wait after stop(): it must end too.
    if (!this.reading) return Promise.resolve(0)
    return new Promise((resolve) => {
      this.stopped = () => resolve(0)
    })
  }
  lookingInPostgres(): void {
    this.looks++
  }
  stop() {
    this.reading = false
    this.stopped?.()
  }
}

async function looksAfterOneRun(queue: string, limits: QueueLimit[], othersDiffer?: () => boolean): Promise<number> {
  const db = createDb(database.url, 2)
  const pipeline = createJobPipeline({
    redis,
    keys: streamKeys(prefix),
    eventsMaxLen: 1000,
    logger: createLogger('error'),
    db,
    workerId: `pump-${queue}`,
    concurrency: 4,
    leaseMs: 30_000,
    retryBaseMs: 50,
    defaultTimeoutMs: 10_000,
    handlers: builtinHandlers({ demoWorkMs: 0, http: { allowedOrigins: [] } }),
    queues: [queue],
    limits,
    othersDiffer,
  })
  const wakeups = new CountingWakeups()
  const [task] = await insertTaskRows(database.db, [
    { title: 'one', type: 'demo', payload: JSON.stringify({ duration_ms: 0 }), queue, enqueued_at: new Date() },
  ])
  const pumping = pipeline.pump(wakeups)
  try {
    await eventually(async () => (await database.db.selectFrom('tasks').select('status').where('id', '=', task!.id).executeTakeFirst())?.status === 'COMPLETED')
    await eventually(async () => pipeline.runner.running.size === 0)
    // A look the run's end started would have begun by now: the pump calls lookingInPostgres as soon as it wakes.
    await new Promise((resolve) => setImmediate(resolve))
    return wakeups.looks
  } finally {
    wakeups.stop()
    await pumping
    await pipeline.drain(1000)
    await db.destroy()
  }
}

test("a run's end makes the pump look again, with no job: a freed limited slot, or a job another worker read, sends none", async () => {
  expect(await looksAfterOneRun('unlimited', [])).toBe(2)
  expect(await looksAfterOneRun('unlimited-mixed', [], () => true)).toBe(2)
  expect(await looksAfterOneRun('limited', [{ queue: 'limited', concurrency: 10 }])).toBe(2)
  expect(await looksAfterOneRun('limited-alike', [{ queue: 'limited-alike', concurrency: 10 }], () => false)).toBe(2)
})

test("among alike workers without limits, a run's end is no reason to look: only a job or the poll is", async () => {
  expect(await looksAfterOneRun('alike', [], () => false)).toBe(1)
})
