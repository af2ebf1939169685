import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'

/** POST /api/tasks/bulk/: up to 1,000 tasks in one transaction, all or none. */
let sys: TestSystem
beforeAll(async () => {
  sys = await startSystem({ workers: 1, env: { DEMO_WORK_MS: 0 } })
})
afterAll(() => sys.stop())

const bulk = (tasks: unknown, headers: Record<string, string> = {}) => postJson(`${sys.http}/api/tasks/bulk`, { tasks }, headers)
const count = async () =>
  Number(
    (
      await sys.db
        .selectFrom('tasks')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  )

describe('bulk create', () => {
  test('creates every task, answers them in order, and each runs', async () => {
    const tasks = Array.from({ length: 1000 }, (_, i) => ({ title: `bulk ${i}`, payload: { duration_ms: 0 } }))
    const res = await bulk(tasks)
    expect(res.status).toBe(201)
    expect(res.body.results.map((t: any) => t.title)).toEqual(tasks.map((t) => t.title))
    const ids = res.body.results.map((t: any) => t.id)
    await eventually(async () => {
      const rows = await sys.db.selectFrom('tasks').select('status').where('id', 'in', ids).execute()
      return rows.length === 1000 && rows.every((r) => r.status === 'COMPLETED')
    }, 60_000)
  })

  test('one bad entry refuses the whole batch, naming the index and field of each; nothing is created', async () => {
    const before = await count()
    const res = await bulk([
      { title: 'fine' },
      { title: '', payload: {} },
      { title: 'bad payload', payload: { duration_ms: 'slow' } },
      { title: 'unknown type', type: 'nope' },
      { title: 'delayed', delay_ms: 500 },
    ])
    expect(res.status).toBe(400)
    // The entry the schema refuses and those only their type's schema refuses, all in one answer, in order.
    expect(res.body.error.details.map((d: any) => d.path)).toEqual(['tasks.1.title', 'tasks.2.payload.duration_ms', 'tasks.3.type'])
    expect(res.body.error.message).toStartWith('tasks.1.title')
    expect(await count()).toBe(before)
    // The schema passes, the payloads do not: still none created, each named.
    const payloads = await bulk([{ title: 'ok' }, { title: 'bad', payload: { duration_ms: 'slow' } }, { title: 'gone', type: 'nope' }])
    expect(payloads.status).toBe(400)
    expect(payloads.body.error.details.map((d: any) => d.path)).toEqual(['tasks.1.payload.duration_ms', 'tasks.2.type'])
    expect(await count()).toBe(before)
    // Within an entry, problems come as a single create names them: the same field first.
    const entry = { max_attempts: 0, priority: 1000 }
    const single = await postJson(`${sys.http}/api/tasks`, entry)
    const inBatch = await bulk([{ title: 'ok' }, entry, { title: 'gone', type: 'nope' }])
    expect(inBatch.body.error.details.map((d: any) => d.path)).toEqual([...single.body.error.details.map((d: any) => `tasks.1.${d.path}`), 'tasks.2.type'])
    expect(inBatch.body.error.message).toStartWith(`tasks.1.${single.body.error.details[0].path}`)
  })

  test('an empty batch, more than 1,000, or not an array is a 400 naming tasks', async () => {
    for (const tasks of [[], Array.from({ length: 1001 }, () => ({ title: 'x' })), 'nope']) {
      const res = await bulk(tasks)
      expect(res.status).toBe(400)
      expect(res.body.error.details[0].path).toBe('tasks')
    }
  })

  test('an Idempotency-Key covers the batch: a retry gets the same tasks, a different batch a 409', async () => {
    const tasks = [{ title: 'a' }, { title: 'b', delay_ms: 60_000 }]
    const first = await bulk(tasks, { 'Idempotency-Key': 'batch-1' })
    expect(first.status).toBe(201)
    const again = await bulk(tasks, { 'Idempotency-Key': 'batch-1' })
    expect(again.status).toBe(200)
    expect(again.body.results.map((t: any) => t.id)).toEqual(first.body.results.map((t: any) => t.id))
    const other = await bulk([{ title: 'a' }, { title: 'c' }], { 'Idempotency-Key': 'batch-1' })
    expect(other.status).toBe(409)
    expect(other.body.error.code).toBe('idempotency_conflict')
    // A single create with the same key is another request entirely.
    expect((await postJson(`${sys.http}/api/tasks`, { title: 'single' }, { 'Idempotency-Key': 'batch-1' })).status).toBe(201)
    await postJson(`${sys.http}/api/tasks/${first.body.results[1].id}/cancel`, {})
  })
})
