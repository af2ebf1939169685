import { beforeAll, describe, expect, test } from 'bun:test'
import { registerWorkerTypes } from '../src/domain/task-types/task-type.repository'
import { appUnderTest } from './helpers/app'

/**
 * A string holding a lone surrogate (half of a UTF-16 pair) is not Unicode
 * text: Postgres would store it as U+FFFD (text) or refuse it (jsonb), so the
 * row would differ from the answer and an identical retry under the same
 * Idempotency-Key would be a 409. Such a title or payload is refused instead,
 * before anything is stored.
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

function expectNamed(res: { status: number; body: any }, path: string) {
  expect(res.status).toBe(400)
  expect(res.body.error.code).toBe('validation_error')
  expect(res.body.error.details.map((d: any) => d.path)).toContain(path)
  expect(res.body.error.message).toMatch(/surrogate/)
}

describe('lone surrogates', () => {
  test.each(['a\uD800b', '\uDC00', 'x\uDBFF'])('a title %j is a 400 naming title, and nothing is stored', async (title) => {
    const before = await countTasks()
    const key = crypto.randomUUID()
    for (let i = 0; i < 2; i++) expectNamed(await send('POST', '/api/tasks/', { title }, { 'idempotency-key': key }), 'title')
    expect(await countTasks()).toBe(before)
  })

  test('a payload string or key holding one, at any depth, is a 400 naming payload', async () => {
    const before = await countTasks()
    for (const payload of [{ note: 'a\uD800b' }, { 'k\uDC00': 1 }, { deep: [{ x: ['ok', { y: '\uD83D' }] }] }]) {
      expectNamed(await send('POST', '/api/tasks/', { title: 'fine', type: anyPayload, payload }), 'payload')
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
})
