import { beforeAll, describe, expect, test } from 'bun:test'
import type { TaskStatus } from '../src/domain/tasks/task'
import { fieldsToRecord } from '../src/domain/messages'
import { appUnderTest } from './helpers/app'

/**
 * The task lifecycle over HTTP with real Postgres and Redis. No worker runs, so
 * tasks stay PENDING unless a test moves them with a direct UPDATE.
 */

const h = appUnderTest()
const { redis, keys, call } = h

const json = { 'content-type': 'application/json' }
const post = (body: unknown, headers: Record<string, string> = {}) =>
  call('/api/tasks/', { method: 'POST', headers: { ...json, ...headers }, body: JSON.stringify(body) })
const create = async (title = 'task', extra: Record<string, unknown> = {}) => {
  const res = await post({ title, ...extra })
  expect(res.status).toBe(201)
  return res.body
}

/** task ids on the jobs stream, oldest first */
const jobIds = async () => (await redis.xrange(keys.shards[0]!.jobs, '-', '+')).map(([, f]) => Number(fieldsToRecord(f).task_id))
/** messages on the events stream for one task, oldest first */
const streamEvents = async (taskId: number) =>
  (await redis.xrange(keys.shards[0]!.events, '-', '+'))
    .map(([, f]) => fieldsToRecord(f))
    .filter((r) => r.t === String(taskId))
    .map((r) => JSON.parse(r.d!))
const setStatus = (id: number, status: TaskStatus, extra: Record<string, unknown> = {}) =>
  h.db
    .updateTable('tasks')
    .set({ status, ...extra } as never)
    .where('id', '=', id)
    .execute()
const row = (id: number) => h.db.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst()
const eventRows = (id: number) => h.db.selectFrom('task_events').selectAll().where('task_id', '=', id).orderBy('seq').execute()

function expectError(body: any, code: string) {
  expect(Object.keys(body)).toEqual(['error'])
  expect(body.error.code).toBe(code)
  expect(typeof body.error.message).toBe('string')
}

describe('POST /api/tasks/', () => {
  test('creates a PENDING task with defaults, answers 201 and enqueues exactly one job', async () => {
    const res = await post({ title: '  first task  ' })
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject({
      title: 'first task',
      type: 'demo',
      payload: {},
      status: 'PENDING',
      attempts: 0,
      max_attempts: 3,
      progress: 0,
      result: null,
      error: null,
      seq: 1,
      started_at: null,
      finished_at: null,
    })
    expect(typeof res.body.id).toBe('number')
    for (const k of ['created_at', 'updated_at', 'run_after']) expect(Date.parse(res.body[k])).not.toBeNaN()
    // internals stay inside
    for (const k of ['idempotency_key', 'locked_by', 'locked_until', 'enqueued_at']) expect(res.body).not.toHaveProperty(k)

    expect((await jobIds()).filter((id) => id === res.body.id)).toHaveLength(1)
    expect((await row(res.body.id))!.enqueued_at).not.toBeNull()
    const events = await eventRows(res.body.id)
    expect(events.map((e) => [e.seq, e.status])).toEqual([[1, 'PENDING']])
  })

  test('keeps type, payload and max_attempts as given', async () => {
    const body = await create('custom', { type: 'demo', payload: { duration_ms: 10, steps: 2, fail: true }, max_attempts: 7 })
    expect(body).toMatchObject({ type: 'demo', payload: { duration_ms: 10, steps: 2, fail: true }, max_attempts: 7 })
    expect(await call(`/api/tasks/${body.id}`)).toMatchObject({ status: 200, body })
  })

  test('one job per created task, in creation order', async () => {
    const before = await jobIds()
    const ids: number[] = []
    for (let i = 0; i < 5; i++) ids.push((await create(`batch ${i}`)).id)
    expect((await jobIds()).slice(before.length)).toEqual(ids)
  })

  test('works without the trailing slash', async () => {
    const res = await call('/api/tasks', { method: 'POST', headers: json, body: JSON.stringify({ title: 'no slash' }) })
    expect(res.status).toBe(201)
  })
})

describe('Idempotency-Key', () => {
  test('a retried POST returns the same task with 200 and enqueues nothing more', async () => {
    const body = { title: 'pay invoice', payload: { steps: 2, fail: false, duration_ms: 5 }, max_attempts: 2 }
    const first = await post(body, { 'idempotency-key': 'key-1' })
    expect(first.status).toBe(201)
    const jobsAfterFirst = await jobIds()
    const tasksAfterFirst = await h.db.selectFrom('tasks').select('id').execute()

    const again = await post(body, { 'idempotency-key': 'key-1' })
    expect(again.status).toBe(200)
    expect(again.body).toEqual(first.body)
    expect(await jobIds()).toEqual(jobsAfterFirst)
    expect(await h.db.selectFrom('tasks').select('id').execute()).toEqual(tasksAfterFirst)
    expect(await eventRows(first.body.id)).toHaveLength(1)
  })

  test('the replay matches however the payload keys are ordered (jsonb reorders them)', async () => {
    const first = await post({ title: 'ordered', payload: { steps: 3, fail: false, duration_ms: 100 } }, { 'idempotency-key': 'key-order' })
    expect(first.status).toBe(201)
    const same = await post({ payload: { duration_ms: 100, fail: false, steps: 3 }, title: 'ordered' }, { 'idempotency-key': 'key-order' })
    expect(same.status).toBe(200)
    expect(same.body.id).toBe(first.body.id)
  })

  test('defaults count as given: {title} and the spelled-out defaults are the same request', async () => {
    const first = await post({ title: ' defaults ' }, { 'idempotency-key': 'key-defaults' })
    const same = await post({ title: 'defaults', type: 'demo', payload: {}, max_attempts: 3 }, { 'idempotency-key': 'key-defaults' })
    expect([first.status, same.status]).toEqual([201, 200])
    expect(same.body.id).toBe(first.body.id)
  })

  test('the same key with a different body is a 409 and changes nothing', async () => {
    const first = await post({ title: 'original' }, { 'idempotency-key': 'key-2' })
    expect(first.status).toBe(201)
    const jobsBefore = await jobIds()
    for (const other of [{ title: 'changed' }, { title: 'original', max_attempts: 5 }, { title: 'original', payload: { steps: 2 } }]) {
      const res = await post(other, { 'idempotency-key': 'key-2' })
      expect(res.status).toBe(409)
      expectError(res.body, 'idempotency_conflict')
    }
    expect(await jobIds()).toEqual(jobsBefore)
    expect((await row(first.body.id))!.title).toBe('original')
  })

  test('the replay reflects the task as it is now', async () => {
    const first = await post({ title: 'will be cancelled' }, { 'idempotency-key': 'key-3' })
    await call(`/api/tasks/${first.body.id}/cancel/`, { method: 'POST' })
    const again = await post({ title: 'will be cancelled' }, { 'idempotency-key': 'key-3' })
    expect(again.status).toBe(200)
    expect(again.body).toMatchObject({ id: first.body.id, status: 'CANCELLED' })
  })

  test('concurrent identical POSTs with one key create one task and one job', async () => {
    const jobsBefore = (await jobIds()).length
    const body = { title: 'race' }
    const results = await Promise.all(Array.from({ length: 8 }, () => post(body, { 'idempotency-key': 'key-race' })))
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201])
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1)
    expect((await jobIds()).length).toBe(jobsBefore + 1)
  })

  test('different keys create different tasks', async () => {
    const a = await post({ title: 'same body' }, { 'idempotency-key': 'key-a' })
    const b = await post({ title: 'same body' }, { 'idempotency-key': 'key-b' })
    expect([a.status, b.status]).toEqual([201, 201])
    expect(a.body.id).not.toBe(b.body.id)
  })

  test('once the task is deleted, its key creates a new task', async () => {
    const first = await post({ title: 'short-lived' }, { 'idempotency-key': 'key-deleted' })
    expect((await call(`/api/tasks/${first.body.id}`, { method: 'DELETE' })).status).toBe(204)
    const again = await post({ title: 'short-lived' }, { 'idempotency-key': 'key-deleted' })
    expect(again.status).toBe(201)
    expect(again.body.id).not.toBe(first.body.id)
  })
})

describe('GET /api/tasks/ (list)', () => {
  // A database of its own, so counts and order are exact.
  const listT = appUnderTest()
  const ids: number[] = []
  beforeAll(async () => {
    for (let i = 1; i <= 45; i++) {
      const res = await listT.app.request('/api/tasks', { method: 'POST', headers: json, body: JSON.stringify({ title: `t${i}` }) })
      ids.push(((await res.json()) as any).id)
    }
    // a few in other states, for the filter
    await listT.db.updateTable('tasks').set({ status: 'FAILED' }).where('id', 'in', [ids[0]!, ids[10]!, ids[44]!]).execute()
    await listT.db.updateTable('tasks').set({ status: 'COMPLETED' }).where('id', '=', ids[5]!).execute()
  })
  const list = async (query = '') => {
    const res = await listT.app.request(`/api/tasks/${query}`)
    return { status: res.status, body: (await res.json()) as any }
  }
  /** follows `next` links until null, returning every page */
  async function walk(first: string) {
    const pages: any[] = []
    let url: string | null = first
    while (url) {
      const res = await list(url)
      expect(res.status).toBe(200)
      pages.push(res.body)
      url = res.body.next === null ? null : new URL(res.body.next, 'http://api.invalid').search
      expect(pages.length).toBeLessThan(20)
    }
    return pages
  }

  test('answers {results, next}, newest first, 20 by default', async () => {
    const { status, body } = await list()
    expect(status).toBe(200)
    expect(Object.keys(body).sort()).toEqual(['next', 'results'])
    expect(body.results).toHaveLength(20)
    expect(body.results.map((t: any) => t.id)).toEqual([...ids].reverse().slice(0, 20))
    expect(typeof body.next).toBe('string')
    // Relative: never built on the Host the client sent (see http.task-events.test.ts).
    expect(body.next).toStartWith('/api/tasks/?')
    const next = new URL(body.next, 'http://api.invalid')
    expect(next.pathname).toBe('/api/tasks/')
    expect(next.searchParams.get('cursor')).toBe(String(body.results[19].id))
  })

  test('following next visits every task exactly once, in order', async () => {
    const pages = await walk('?limit=10')
    expect(pages.map((p) => p.results.length)).toEqual([10, 10, 10, 10, 5])
    expect(pages.flatMap((p) => p.results.map((t: any) => t.id))).toEqual([...ids].reverse())
    expect(pages.at(-1).next).toBeNull()
    // next keeps the other parameters
    expect(new URL(pages[0].next, 'http://api.invalid').searchParams.get('limit')).toBe('10')
  })

  test('an exact last page has next null', async () => {
    const pages = await walk('?limit=15')
    expect(pages.map((p) => p.results.length)).toEqual([15, 15, 15])
    expect(pages.at(-1).next).toBeNull()
  })

  test('limit 100 returns everything with next null', async () => {
    const { body } = await list('?limit=100')
    expect(body.results).toHaveLength(45)
    expect(body.next).toBeNull()
  })

  test('cursor returns tasks older than it', async () => {
    const { body } = await list(`?cursor=${ids[3]}&limit=100`)
    expect(body.results.map((t: any) => t.id)).toEqual(ids.slice(0, 3).reverse())
    expect(body.next).toBeNull()
    const past = await list('?cursor=1')
    expect(past.body).toEqual({ results: [], next: null })
  })

  test('status filters, and pages within the filter', async () => {
    const failed = await list('?status=FAILED')
    expect(failed.body.results.map((t: any) => t.id)).toEqual([ids[44], ids[10], ids[0]])
    expect(failed.body.results.every((t: any) => t.status === 'FAILED')).toBe(true)
    const pages = await walk('?status=FAILED&limit=2')
    expect(pages.flatMap((p) => p.results.map((t: any) => t.id))).toEqual([ids[44], ids[10], ids[0]])
    expect(new URL(pages[0].next, 'http://api.invalid').searchParams.get('status')).toBe('FAILED')
    expect((await list('?status=COMPLETED')).body.results.map((t: any) => t.id)).toEqual([ids[5]])
    expect((await list('?status=CANCELLED')).body).toEqual({ results: [], next: null })
    const pending = await list('?status=PENDING&limit=100')
    expect(pending.body.results).toHaveLength(41)
  })

  test('works without the trailing slash', async () => {
    const res = await listT.app.request('/api/tasks?limit=1')
    expect(res.status).toBe(200)
  })
})

describe('GET /api/tasks/ on an empty database', () => {
  const emptyT = appUnderTest()
  test('is an empty page with no next link', async () => {
    const r = await emptyT.app.request('/api/tasks/')
    expect(await r.json()).toEqual({ results: [], next: null })
  })
})

describe('GET /api/tasks/:id/', () => {
  test('returns the task, with and without the trailing slash', async () => {
    const t = await create('get me')
    for (const path of [`/api/tasks/${t.id}/`, `/api/tasks/${t.id}`]) {
      const res = await call(path)
      expect(res.status).toBe(200)
      expect(res.body).toEqual(t)
    }
  })

  test('a missing task is a 404 with code not_found and a clear message', async () => {
    const res = await call('/api/tasks/424242/')
    expect(res.status).toBe(404)
    expect(res.body).toEqual({ error: { code: 'not_found', message: 'task 424242 not found' } })
  })
})

describe('PATCH /api/tasks/:id/', () => {
  test('renames, bumps seq, records an event with detail {title} and publishes it', async () => {
    const t = await create('old name')
    const res = await call(`/api/tasks/${t.id}/`, { method: 'PATCH', headers: json, body: JSON.stringify({ title: '  new name ' }) })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ id: t.id, title: 'new name', seq: 2, status: 'PENDING' })
    expect(Date.parse(res.body.updated_at)).toBeGreaterThanOrEqual(Date.parse(t.updated_at))
    expect((await call(`/api/tasks/${t.id}`)).body).toEqual(res.body)

    const events = await eventRows(t.id)
    expect(events.map((e) => [e.seq, e.status, e.detail])).toEqual([
      [1, 'PENDING', null],
      [2, 'PENDING', { title: 'new name' }],
    ])
    const published = await streamEvents(t.id)
    expect(published.at(-1)).toMatchObject({ kind: 'change', task_id: t.id, seq: 2, detail: { title: 'new name' } })
    // a rename is not a new job
    expect((await jobIds()).filter((id) => id === t.id)).toHaveLength(1)
  })

  test('without the trailing slash too', async () => {
    const t = await create('x')
    const res = await call(`/api/tasks/${t.id}`, { method: 'PATCH', headers: json, body: JSON.stringify({ title: 'y' }) })
    expect(res.status).toBe(200)
    expect(res.body.title).toBe('y')
  })

  test('a missing task is a 404', async () => {
    const res = await call('/api/tasks/424242/', { method: 'PATCH', headers: json, body: JSON.stringify({ title: 'y' }) })
    expect(res.status).toBe(404)
    expect(res.body.error).toEqual({ code: 'not_found', message: 'task 424242 not found' })
  })
})

describe('DELETE /api/tasks/:id/', () => {
  test('a PENDING task is cancelled, then deleted: 204, then GET is 404', async () => {
    const t = await create('doomed')
    const res = await h.app.request(`/api/tasks/${t.id}/`, { method: 'DELETE' })
    expect(res.status).toBe(204)
    expect(await res.text()).toBe('')
    expect((await call(`/api/tasks/${t.id}/`)).status).toBe(404)
    expect((await call(`/api/tasks/${t.id}/events/`)).status).toBe(404)
    expect(await row(t.id)).toBeUndefined()
    expect(await eventRows(t.id)).toEqual([])
    // subscribers heard the cancel, then the deletion
    const published = await streamEvents(t.id)
    expect(published.map((e) => [e.status, e.deleted ?? false])).toEqual([
      ['PENDING', false],
      ['CANCELLED', false],
      ['CANCELLED', true],
    ])
    expect(published.map((e) => e.seq)).toEqual([1, 2, 3])
  })

  test('a PROCESSING task is cancelled first too', async () => {
    const t = await create('running')
    await setStatus(t.id, 'PROCESSING', { attempts: 1, locked_by: 'w1', locked_until: new Date(Date.now() + 60_000) })
    const res = await h.app.request(`/api/tasks/${t.id}`, { method: 'DELETE' })
    expect(res.status).toBe(204)
    expect((await streamEvents(t.id)).map((e) => [e.status, e.deleted ?? false])).toEqual([
      ['PENDING', false],
      ['CANCELLED', false],
      ['CANCELLED', true],
    ])
  })

  test('a finished task is deleted without a cancel', async () => {
    const t = await create('done')
    await setStatus(t.id, 'COMPLETED', { progress: 1 })
    const res = await h.app.request(`/api/tasks/${t.id}/`, { method: 'DELETE' })
    expect(res.status).toBe(204)
    const published = await streamEvents(t.id)
    expect(published.map((e) => [e.status, e.deleted ?? false])).toEqual([
      ['PENDING', false],
      ['COMPLETED', true],
    ])
  })

  test('deleting twice: the second is a 404', async () => {
    const t = await create('twice')
    expect((await h.app.request(`/api/tasks/${t.id}`, { method: 'DELETE' })).status).toBe(204)
    const again = await call(`/api/tasks/${t.id}`, { method: 'DELETE' })
    expect(again.status).toBe(404)
    expectError(again.body, 'not_found')
  })
})

describe('POST /api/tasks/:id/cancel/', () => {
  test('PENDING becomes CANCELLED with finished_at, an event and a published message', async () => {
    const t = await create('cancel me')
    const res = await call(`/api/tasks/${t.id}/cancel/`, { method: 'POST' })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ id: t.id, status: 'CANCELLED', seq: 2, run_after: null })
    expect(Date.parse(res.body.finished_at)).not.toBeNaN()
    expect((await eventRows(t.id)).map((e) => [e.seq, e.status, e.detail])).toEqual([
      [1, 'PENDING', null],
      [2, 'CANCELLED', { reason: 'cancelled by request' }],
    ])
    expect((await streamEvents(t.id)).map((e) => [e.seq, e.status])).toEqual([
      [1, 'PENDING'],
      [2, 'CANCELLED'],
    ])
  })

  test('PROCESSING becomes CANCELLED and the lease is released', async () => {
    const t = await create('cancel running')
    await setStatus(t.id, 'PROCESSING', { attempts: 1, locked_by: 'w1', locked_until: new Date(Date.now() + 60_000) })
    const res = await call(`/api/tasks/${t.id}/cancel`, { method: 'POST' })
    expect(res.status).toBe(200)
    expect(res.body.status).toBe('CANCELLED')
    const r = await row(t.id)
    expect([r!.locked_by, r!.locked_until]).toEqual([null, null])
  })

  for (const status of ['COMPLETED', 'FAILED', 'CANCELLED'] as const) {
    test(`a ${status} task is a 409 conflict and stays as it is`, async () => {
      const t = await create(`finished ${status}`)
      await setStatus(t.id, status)
      const before = await row(t.id)
      const res = await call(`/api/tasks/${t.id}/cancel/`, { method: 'POST' })
      expect(res.status).toBe(409)
      expectError(res.body, 'conflict')
      expect(res.body.error.message).toContain(status)
      expect(await row(t.id)).toEqual(before)
    })
  }

  test('a missing task is a 404', async () => {
    const res = await call('/api/tasks/424242/cancel/', { method: 'POST' })
    expect(res.status).toBe(404)
    expect(res.body.error).toEqual({ code: 'not_found', message: 'task 424242 not found' })
  })
})

describe('POST /api/tasks/:id/retry/', () => {
  for (const status of ['FAILED', 'CANCELLED'] as const) {
    test(`a ${status} task goes back to PENDING with attempts 0 and is enqueued again`, async () => {
      const t = await create(`retry ${status}`)
      await setStatus(t.id, status, {
        attempts: 3,
        progress: 0.5,
        error: 'boom',
        started_at: new Date(),
        finished_at: new Date(),
        run_after: new Date(Date.now() + 3_600_000),
      })
      const jobsBefore = (await jobIds()).filter((id) => id === t.id).length
      const res = await call(`/api/tasks/${t.id}/retry/`, { method: 'POST' })
      expect(res.status).toBe(200)
      expect(res.body).toMatchObject({
        id: t.id,
        status: 'PENDING',
        attempts: 0,
        progress: 0,
        error: null,
        result: null,
        started_at: null,
        finished_at: null,
        seq: 2,
      })
      // due now, not an hour from now
      expect(Date.parse(res.body.run_after)).toBeLessThanOrEqual(Date.now() + 1000)
      expect((await jobIds()).filter((id) => id === t.id)).toHaveLength(jobsBefore + 1)
      expect((await eventRows(t.id)).at(-1)).toMatchObject({ seq: 2, status: 'PENDING', detail: { reason: 'retried by request' } })
    })
  }

  test('cancel then retry over HTTP', async () => {
    const t = await create('round trip')
    expect((await call(`/api/tasks/${t.id}/cancel`, { method: 'POST' })).status).toBe(200)
    const res = await call(`/api/tasks/${t.id}/retry`, { method: 'POST' })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ status: 'PENDING', seq: 3 })
    expect((await jobIds()).filter((id) => id === t.id)).toHaveLength(2)
  })

  for (const status of ['PENDING', 'PROCESSING', 'COMPLETED'] as const) {
    test(`a ${status} task is a 409 conflict and nothing is enqueued`, async () => {
      const t = await create(`not retryable ${status}`)
      if (status !== 'PENDING') await setStatus(t.id, status)
      const before = await row(t.id)
      const jobsBefore = await jobIds()
      const res = await call(`/api/tasks/${t.id}/retry/`, { method: 'POST' })
      expect(res.status).toBe(409)
      expectError(res.body, 'conflict')
      expect(await row(t.id)).toEqual(before)
      expect(await jobIds()).toEqual(jobsBefore)
    })
  }

  test('a missing task is a 404', async () => {
    const res = await call('/api/tasks/424242/retry', { method: 'POST' })
    expect(res.status).toBe(404)
    expectError(res.body, 'not_found')
  })
})

describe('GET /api/tasks/:id/events/', () => {
  test('lists the history oldest first, one row per change', async () => {
    const t = await create('history')
    await call(`/api/tasks/${t.id}`, { method: 'PATCH', headers: json, body: JSON.stringify({ title: 'renamed' }) })
    await call(`/api/tasks/${t.id}/cancel`, { method: 'POST' })
    await call(`/api/tasks/${t.id}/retry`, { method: 'POST' })
    for (const path of [`/api/tasks/${t.id}/events/`, `/api/tasks/${t.id}/events`]) {
      const res = await call(path)
      expect(res.status).toBe(200)
      expect(Object.keys(res.body).sort()).toEqual(['next', 'results', 'task_id'])
      expect(res.body.next).toBeNull()
      expect(res.body.task_id).toBe(t.id)
      expect(res.body.results.map((e: any) => [e.seq, e.status, e.detail])).toEqual([
        [1, 'PENDING', null],
        [2, 'PENDING', { title: 'renamed' }],
        [3, 'CANCELLED', { reason: 'cancelled by request' }],
        [4, 'PENDING', { reason: 'retried by request' }],
      ])
      const cursors = res.body.results.map((e: any) => e.cursor)
      expect(cursors).toEqual([...cursors].sort((a, b) => a - b))
      for (const e of res.body.results) {
        expect(e).toMatchObject({ kind: 'change', task_id: t.id })
        expect(Date.parse(e.at)).not.toBeNaN()
      }
    }
  })

  test('a missing task is a 404', async () => {
    const res = await call('/api/tasks/424242/events/')
    expect(res.status).toBe(404)
    expect(res.body.error).toEqual({ code: 'not_found', message: 'task 424242 not found' })
  })
})
