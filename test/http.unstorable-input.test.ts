import { beforeAll, describe, expect, test } from 'bun:test'
import { registerWorkerTypes } from '../src/domain/task-types/task-type.repository'
import { appUnderTest } from './helpers/app'

/**
 * What Postgres would not store as sent is refused before anything is stored,
 * with a 400 naming the field: NUL (text and jsonb refuse it: the INSERT would
 * fail as a 500), a lone surrogate (half of a UTF-16 pair: stored as U+FFFD or
 * refused, so the row would differ from the answer and an identical retry
 * under the same Idempotency-Key would be a 409), and a number JSON cannot
 * carry (1e400 parses as Infinity, which jsonb would store as null).
 */

const h = appUnderTest()
const { call } = h

// The demo handler takes no strings at all; a type that takes any object shows what jsonb would do.
const anyPayload = 'test-any-payload'
beforeAll(() => registerWorkerTypes(h.db, 'test-worker', [{ name: anyPayload, payloadSchema: { type: 'object' }, timeoutMs: null }]))

// JSON.stringify writes a lone surrogate as the escape "\ud800", as a broken client would.
const send = (method: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  call(path, { method, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })

const countTasks = () => h.countTasks()

function expectNamed(res: { status: number; body: any }, path: string, why = /surrogate/) {
  expect(res.status).toBe(400)
  expect(res.body.error.code).toBe('validation_error')
  expect(res.body.error.details.map((d: any) => d.path)).toEqual([path])
  expect(res.body.error.message).toMatch(why)
}

// A body as a client would send it, for what JSON.stringify cannot write (1e400).
const sendRaw = (method: string, path: string, body: string) => call(path, { method, headers: { 'content-type': 'application/json' }, body })

describe('input Postgres would not store as sent', () => {
  test.each(['a\uD800b', '\uDC00', 'x\uDBFF'])('a title %j is a 400 naming title, and nothing is stored', async (title) => {
    const before = await countTasks()
    const key = crypto.randomUUID()
    for (let i = 0; i < 2; i++) expectNamed(await send('POST', '/api/tasks/', { title }, { 'idempotency-key': key }), 'title')
    expect(await countTasks()).toBe(before)
  })

  test('a payload string or key holding one, at any depth, is a 400 naming where it is', async () => {
    const before = await countTasks()
    for (const [payload, path] of [
      [{ note: 'a\uD800b' }, 'payload.note'],
      [{ 'k\uDC00': 1 }, 'payload.k\uDC00'],
      [{ deep: [{ x: ['ok', { y: '\uD83D' }] }] }, 'payload.deep.0.x.1.y'],
    ] as const) {
      expectNamed(await send('POST', '/api/tasks/', { title: 'fine', type: anyPayload, payload }), path)
    }
    expect(await countTasks()).toBe(before)
  })

  test('PATCH with such a title is a 400 and leaves the title as it was', async () => {
    const created = await send('POST', '/api/tasks/', { title: 'before', payload: { duration_ms: 60_000 } })
    expect(created.status).toBe(201)
    expectNamed(await send('PATCH', `/api/tasks/${created.body.id}/`, { title: 'after\uD800' }), 'title')
    expect((await call(`/api/tasks/${created.body.id}/`)).body.title).toBe('before')
  })

  test('well-formed pairs (emoji) are stored and answered exactly as sent; a retry is the same task', async () => {
    const body = { title: 'ok 😀 \u{10FFFF}', type: anyPayload, payload: { note: '😀', '😀': ['\u{1F600}'] } }
    const first = await send('POST', '/api/tasks/', body, { 'idempotency-key': 'pairs' })
    expect(first.status).toBe(201)
    expect(first.body).toMatchObject(body)
    const again = await send('POST', '/api/tasks/', body, { 'idempotency-key': 'pairs' })
    expect(again.status).toBe(200)
    expect(again.body.id).toBe(first.body.id)
    const row = await h.db.selectFrom('tasks').select(['title', 'payload']).where('id', '=', first.body.id).executeTakeFirstOrThrow()
    expect(row).toEqual({ title: body.title, payload: body.payload })
  })

  test('NUL in a payload string or key, or a number past JSON (1e400), is a 400 naming where it is', async () => {
    const before = await countTasks()
    const nul = /NUL/
    expectNamed(await send('POST', '/api/tasks/', { title: 'm', type: anyPayload, payload: { subject: 'x\u0000y' } }), 'payload.subject', nul)
    expectNamed(await send('POST', '/api/tasks/', { title: 'm', type: anyPayload, payload: { a: 1, 'k\u0000': 1 } }), 'payload.k\u0000', nul)
    expectNamed(await send('POST', '/api/tasks/', { title: 'm', payload: { list: [['\u0000']] } }), 'payload.list.0.0', nul)
    expectNamed(await sendRaw('POST', '/api/tasks/', '{"title":"m","type":"test-any-payload","payload":{"a":[1,{"b":1e400}]}}'), 'payload.a.1.b', /finite/)
    expectNamed(await sendRaw('POST', '/api/tasks/', '{"title":"m","type":"test-any-payload","payload":{"a":-1e999}}'), 'payload.a', /finite/)
    // The same payload in a bulk create and in a schedule's task.
    expectNamed(
      await send('POST', '/api/tasks/bulk/', { tasks: [{ title: 'ok' }, { title: 'm', type: anyPayload, payload: { s: '\u0000' } }] }),
      'tasks.1.payload.s',
      nul,
    )
    const schedule = { name: 'nul', cron: '0 * * * *', task: { title: 'm', type: anyPayload, payload: { s: 'a\u0000' } } }
    expectNamed(await send('POST', '/api/schedules/', schedule), 'task.payload.s', nul)
    expect(await countTasks()).toBe(before)
    expect((await call('/api/schedules/')).body.results).toEqual([])
  })

  test('NUL in a filter (type, q) or a bulk action is a 400 naming it, never a 500', async () => {
    expectNamed(await call('/api/tasks/?q=%00'), 'q', /NUL/)
    expectNamed(await call('/api/tasks/?type=a%00'), 'type', /NUL/)
    expectNamed(await send('POST', '/api/tasks/retry-failed/', { type: '\u0000' }), 'type', /NUL/)
    expectNamed(await send('POST', '/api/tasks/cancel-pending/', { queue: 'default', type: '\u0000' }), 'type', /NUL/)
    expectNamed(await send('POST', '/api/tasks/', { title: 'a\u0000b' }), 'title', /NUL/)
    expectNamed(await send('POST', '/api/tasks/', { title: 'fine', type: 'x\u0000' }), 'type', /NUL/)
  })
})
