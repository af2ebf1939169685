import { describe, expect, test } from 'bun:test'
import { sql } from 'kysely'
import { forgetWorkerTypes, registerWorkerTypes } from '../src/domain/task-types/task-type.repository'
import { appUnderTest } from './helpers/app'
import { eventually } from './helpers/poll'

/**
 * Registered task types as the API sees them: rows a worker wrote (here
 * written the way registerWorkerTypes writes them), their JSON Schemas
 * checked with Ajv, and their liveness.
 */
const h = appUnderTest()
const post = (type: string, payload: unknown) =>
  h.call('/api/tasks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: type, type, payload }) })
const types = async () => Object.fromEntries(((await h.call('/api/task-types')).body.results as any[]).map((t) => [t.name, t]))
const register = (worker: string, name: string, payloadSchema: Record<string, unknown>, timeoutMs: number | null = null) =>
  registerWorkerTypes(h.db, worker, [{ name, payloadSchema, timeoutMs }])

const orderSchema = {
  type: 'object',
  properties: {
    customer: { type: 'object', properties: { email: { type: 'string', format: 'email', pattern: '^[^@]+@[^@]+$' } }, required: ['email'] },
    lines: { type: 'array', items: { type: 'object', properties: { qty: { type: 'integer', minimum: 1 } }, required: ['qty'] } },
  },
  required: ['customer'],
  additionalProperties: false,
}

describe('registered task types', () => {
  test('a payload is checked against the registered JSON Schema; each error names its field', async () => {
    await register('w-orders', 'place-order', orderSchema)
    expect((await post('place-order', { customer: { email: 'a@b.co' }, lines: [{ qty: 2 }] })).status).toBe(201)
    const bad = await post('place-order', { customer: { email: 'nope' }, lines: [{ qty: 1 }, { qty: 0 }], coupon: 'X' })
    expect(bad.status).toBe(400)
    expect(bad.body.error.code).toBe('validation_error')
    expect(bad.body.error.details).toEqual(
      expect.arrayContaining([
        { path: 'payload.customer.email', message: 'must be a valid email' },
        { path: 'payload.lines.1.qty', message: 'must be >= 1' },
        { path: 'payload.coupon', message: 'unknown field' },
      ]),
    )
    const missing = await post('place-order', {})
    expect(missing.body.error.details).toEqual([{ path: 'payload.customer', message: 'is required' }])
  })

  test('a type registered a moment ago is accepted on its first POST; a changed schema applies within seconds', async () => {
    expect((await post('fresh-type', {})).status).toBe(400)
    await register('w-fresh', 'fresh-type', { type: 'object', properties: { n: { type: 'integer' } } })
    expect((await post('fresh-type', { n: 1 })).status).toBe(201)
    await register('w-fresh', 'fresh-type', { type: 'object', properties: { n: { type: 'string' } } })
    await eventually(async () => (await post('fresh-type', { n: 'now a string' })).status === 201, 10_000)
    expect((await post('fresh-type', { n: 1 })).status).toBe(400)
  })

  test('handled while a worker that registered it was seen lately; not once it stopped or went quiet', async () => {
    await register('w-a', 'quiet-type', { type: 'object' }, 1500)
    await register('w-b', 'quiet-type', { type: 'object' }, 1500)
    expect((await types())['quiet-type']).toMatchObject({ handled: true, builtin: false, timeout_ms: 1500 })
    expect((await types())['quiet-type'].workers.map((w: any) => w.worker_id)).toEqual(['w-a', 'w-b'])
    await forgetWorkerTypes(h.db, 'w-a')
    // w-b died without a word: its row stays, but it has not been seen for a minute.
    await h.db.updateTable('task_type_workers').set({ last_seen_at: sql`now() - interval '1 minute'` }).where('worker_id', '=', 'w-b').execute()
    expect((await types())['quiet-type']).toMatchObject({ handled: false, workers: [] })
    // Still known: a task of it is accepted and waits.
    expect((await post('quiet-type', {})).status).toBe(201)
    const ready = (await h.call('/readyz')).body
    expect(ready.unhandled_types).toContain('quiet-type')
  })

  test('built-in types are listed first and checked with their own schemas, whatever a worker registered', async () => {
    await register('w-shadow', 'demo', { type: 'object', properties: { duration_ms: { type: 'string' } } })
    const list = (await h.call('/api/task-types')).body.results as any[]
    expect(list[0]).toMatchObject({ name: 'demo', builtin: true })
    expect((await post('demo', { duration_ms: 'slow' })).status).toBe(400)
    expect((await post('demo', { duration_ms: 0 })).status).toBe(201)
  })

  test('a registered schema Ajv cannot compile leaves payloads to the worker: accepted, never a 500', async () => {
    await register('w-odd', 'odd-schema', { type: 'object', properties: { x: { $ref: '#/$defs/missing' } } })
    expect((await post('odd-schema', { x: 1 })).status).toBe(201)
  })

  test('a type name that is an Object.prototype key is unknown, not a 500', async () => {
    for (const name of ['constructor', '__proto__', 'toString']) expect((await post(name, {})).status).toBe(400)
  })

  test('an admin removes a type nobody handles: POSTs of it are unknown, /readyz forgets it, its stored tasks stay', async () => {
    const remove = (name: string) => h.call(`/api/task-types/${encodeURIComponent(name)}`, { method: 'DELETE' })
    await register('w-old', 'retired-type', { type: 'object' })
    const stored = await post('retired-type', {})
    expect(stored.status).toBe(201)
    // Handled by a live worker: kept, and the worker named.
    const refused = await remove('retired-type')
    expect(refused.status).toBe(409)
    expect(refused.body.error.message).toContain('w-old')
    await forgetWorkerTypes(h.db, 'w-old')
    expect((await remove('retired-type')).status).toBe(204)
    const unknown = await post('retired-type', {})
    expect(unknown.status).toBe(400)
    expect(unknown.body.error.details[0].path).toBe('type')
    expect((await types())['retired-type']).toBeUndefined()
    expect((await h.call('/readyz')).body.unhandled_types ?? []).not.toContain('retired-type')
    expect((await h.call(`/api/tasks/${stored.body.id}`)).body.status).toBe('PENDING')
    // Gone, built in, or not a name: each says so.
    expect((await remove('retired-type')).status).toBe(404)
    expect((await remove('demo')).status).toBe(409)
    expect((await remove('a\u0000b')).status).toBe(400)
  })
})

describe('removing a task type', () => {
  const principal = (admin: boolean) => ({ ownerId: admin ? 1 : 2, admin, name: admin ? 'admin' : 'user', rateLimitPerSec: null })
  const withTokens = appUnderTest({ auth: { mode: 'required', verify: async (t) => (t === 'admin' || t === 'user' ? principal(t === 'admin') : null) } })

  test('is for an admin token only', async () => {
    await registerWorkerTypes(withTokens.db, 'w-x', [{ name: 'kept-type', payloadSchema: { type: 'object' }, timeoutMs: null }])
    await forgetWorkerTypes(withTokens.db, 'w-x')
    const remove = (token: string) => withTokens.call('/api/task-types/kept-type', { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })
    const forbidden = await remove('user')
    expect(forbidden.status).toBe(403)
    expect(forbidden.body.error.code).toBe('forbidden')
    expect((await remove('admin')).status).toBe(204)
  })
})
