import { afterAll, beforeAll, expect, test } from 'bun:test'
import { sql } from 'kysely'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'
import { createTaskInserter } from '../src/domain/tasks/task.service'
import { createLogger } from '../src/infra/logger'
import { streamKeys } from '../src/infra/stream-keys'
import { heldPushRedis } from './helpers/redis'

let sys: TestSystem
beforeAll(async () => {
  sys = await startSystem({ workers: 0 })
})
afterAll(() => sys.stop())

test('concurrent POSTs share INSERTs, yet each answer is its own task, as stored', async () => {
  const sent = Array.from({ length: 60 }, (_, i) => ({
    title: `batched ${i}`,
    payload: { duration_ms: i },
    max_attempts: 1 + (i % 5),
    ...(i % 2 ? { timeout_ms: 1000 + i } : {}),
  }))
  const answers = await Promise.all(sent.map((body) => postJson(`${sys.http}/api/tasks`, body)))
  answers.forEach((a, i) => {
    expect(a.status).toBe(201)
    expect(a.body).toMatchObject({ ...sent[i], timeout_ms: sent[i]!.timeout_ms ?? null, status: 'PENDING', seq: 1 })
  })
  const rows = await sys.db
    .selectFrom('tasks')
    .select(['id', 'title', 'created_at', 'enqueued_at'])
    .where(
      'id',
      'in',
      answers.map((a) => a.body.id),
    )
    .execute()
  for (const row of rows) expect(row.title).toBe(answers.find((a) => a.body.id === row.id)!.body.title)
  expect(rows.every((r) => r.enqueued_at !== null)).toBe(true)
  // Tasks of one INSERT share its transaction's now(): fewer distinct times than tasks means creates were batched.
  expect(new Set(rows.map((r) => r.created_at.getTime())).size).toBeLessThan(rows.length)
})

test('creates arriving over a few event-loop turns (one per connection) wait for each other and share one INSERT', async () => {
  const inserter = createTaskInserter({ db: sys.db, redis: sys.redis, keys: streamKeys(sys.prefix), eventsMaxLen: 1000, logger: createLogger('error') })
  const row = (i: number) => ({ title: `turn ${i}`, type: 'demo', payload: {}, max_attempts: 1, owner_id: null, idempotency_key: null })
  // One add per loop turn, each scheduled before the one before it is made, as requests read from separate sockets.
  const added: Promise<{ id: number; created_at: Date }>[] = []
  await new Promise<void>((done) => {
    const step = (i: number) => {
      setImmediate(() => (i < 3 ? step(i + 1) : done()))
      added.push(inserter.add(row(i)))
    }
    setImmediate(() => step(0))
  })
  const changes = await Promise.all(added)
  expect(changes).toHaveLength(4)
  // One INSERT, one transaction: one now() for all four.
  expect(new Set(changes.map((c) => c.created_at.getTime())).size).toBe(1)
})

test('a create that comes while an INSERT is stuck goes in a second INSERT beside it, not behind it', async () => {
  const inserter = createTaskInserter({ db: sys.db, redis: sys.redis, keys: streamKeys(sys.prefix), eventsMaxLen: 1000, logger: createLogger('error') })
  const row = (title: string) => ({ title, type: 'demo', payload: {}, max_attempts: 1, owner_id: null, idempotency_key: null })
  const waitingInserts = async () =>
    Number(
      (await sql<{ n: string }>`select count(*) as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%insert into tasks%'`.execute(sys.db))
        .rows[0]!.n,
    )
  // A transaction holding tasks in SHARE mode keeps every INSERT into it waiting until it ends.
  const adds: Promise<{ title: string }>[] = []
  await sys.db.connection().execute(async (conn) => {
    await sql`begin`.execute(conn)
    await sql`lock table tasks in share mode`.execute(conn)
    try {
      adds.push(inserter.add(row('first')))
      await eventually(async () => (await waitingInserts()) === 1)
      adds.push(inserter.add(row('second')))
      await eventually(async () => (await waitingInserts()) === 2)
    } finally {
      await sql`commit`.execute(conn)
    }
  })
  const locker = await Promise.all(adds)
  expect(locker.map((c) => c.title)).toEqual(['first', 'second'])
})

test('a create is answered once Postgres has it; its job and event reach Redis after, and shutdown can wait for them', async () => {
  const { redis, pushes, release } = heldPushRedis()
  const keys = streamKeys(sys.prefix)
  const inserter = createTaskInserter({ db: sys.db, redis, keys, eventsMaxLen: 1000, logger: createLogger('error') })
  const jobFor = async (id: number) => (await sys.redis.xrange(keys.shards[0]!.jobs, '-', '+')).some(([, fields]) => fields[1] === String(id))
  try {
    const change = await inserter.add({ title: 'answered first', type: 'demo', payload: {}, max_attempts: 1, owner_id: null, idempotency_key: null })
    expect(await sys.db.selectFrom('tasks').select('id').where('id', '=', change.id).executeTakeFirst()).toEqual({ id: change.id })
    expect(pushes).toHaveLength(0)
    expect(await jobFor(change.id)).toBe(false)
    release()
    await inserter.pushed()
    expect(pushes).toHaveLength(1)
    expect(await jobFor(change.id)).toBe(true)
  } finally {
    release()
    redis.disconnect()
  }
})
