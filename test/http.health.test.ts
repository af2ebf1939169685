import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createApp } from '../src/api/app'
import { createDb } from '../src/infra/db'
import { createLogger } from '../src/infra/logger'
import { createRedis } from '../src/infra/redis'
import { streamKeys } from '../src/infra/stream-keys'
import { createTestDatabase, type TestDatabase } from './helpers/database'
import { deleteKeys, testRedis, uniquePrefix } from './helpers/redis'

/**
 * Health and readiness, routing (unknown routes, trailing slashes) and what the
 * API answers while Postgres or Redis is unreachable (closed ports, no mocks).
 */

const logger = createLogger('silent')
let database: TestDatabase
let app: ReturnType<typeof createApp>
const redis = testRedis()
const prefix = uniquePrefix()
const keys = streamKeys(prefix)
// Nothing listens on port 1: connections are refused at once.
const deadDb = createDb('postgres://postgres@127.0.0.1:1/x', 2)
const deadRedis = createRedis('redis://127.0.0.1:1', 'producer', logger)

beforeAll(async () => {
  database = await createTestDatabase()
  app = createApp({ db: database.db, redis, keys, eventsMaxLen: 1000, logger })
})
afterAll(async () => {
  deadRedis.disconnect()
  await deadDb.destroy()
  await deleteKeys(redis, prefix)
  redis.disconnect()
  await database.drop()
})

async function call(a: ReturnType<typeof createApp>, path: string, init: RequestInit = {}) {
  const res = await a.request(path, init)
  const text = await res.text()
  expect(text).not.toMatch(/\bat .+:\d+:\d+|"stack"|node_modules/)
  expect(res.headers.get('content-type')).toStartWith('application/json')
  return { status: res.status, body: JSON.parse(text), headers: res.headers }
}

const json = { 'content-type': 'application/json' }

describe('GET /healthz', () => {
  test('200 with and without a trailing slash', async () => {
    for (const path of ['/healthz', '/healthz/']) {
      const res = await call(app, path)
      expect(res.status).toBe(200)
      expect(res.body).toEqual({ status: 'ok' })
    }
  })

  test('answers even when Postgres and Redis are both away (liveness, not readiness)', async () => {
    const dead = createApp({ db: deadDb, redis: deadRedis, keys, eventsMaxLen: 1000, logger })
    expect((await call(dead, '/healthz')).status).toBe(200)
  })
})

describe('GET /readyz', () => {
  test('200 when Postgres and Redis answer', async () => {
    for (const path of ['/readyz', '/readyz/']) {
      const res = await call(app, path)
      expect(res.status).toBe(200)
      expect(res.body).toMatchObject({ status: 'ready', database: 'ok', redis: 'ok' })
      expect(res.body).not.toHaveProperty('error')
    }
  })

  test('503 naming the database when Postgres is away', async () => {
    const noDb = createApp({ db: deadDb, redis, keys, eventsMaxLen: 1000, logger })
    const res = await call(noDb, '/readyz/')
    expect(res.status).toBe(503)
    expect(res.body.error.code).toBe('unavailable')
    expect(res.body.error.message).toContain('database')
    expect(res.body.error.message).not.toContain('redis')
    expect(Object.keys(res.body)).toEqual(['error'])
    expect(res.body.error.details.map((d: any) => d.path)).toEqual(['database'])
  })

  test('503 naming redis when Redis is away', async () => {
    const noRedis = createApp({ db: database.db, redis: deadRedis, keys, eventsMaxLen: 1000, logger })
    const res = await call(noRedis, '/readyz')
    expect(res.status).toBe(503)
    expect(res.body.error.code).toBe('unavailable')
    expect(res.body.error.message).toContain('redis')
    expect(res.body.error.message).not.toContain('database')
    expect(Object.keys(res.body)).toEqual(['error'])
    expect(res.body.error.details.map((d: any) => d.path)).toEqual(['redis'])
  })

  test('503 naming both when both are away', async () => {
    const neither = createApp({ db: deadDb, redis: deadRedis, keys, eventsMaxLen: 1000, logger })
    const res = await call(neither, '/readyz')
    expect(res.status).toBe(503)
    expect(res.body.error.message).toContain('database')
    expect(res.body.error.message).toContain('redis')
    expect(res.body.error.details.map((d: any) => d.path)).toEqual(['database', 'redis'])
    for (const d of res.body.error.details) expect(typeof d.message).toBe('string')
  })
})

describe('when Postgres is unreachable, every API call is a 503 unavailable, never a 500', () => {
  const calls: [string, string, RequestInit][] = [
    ['list', '/api/tasks/', {}],
    ['get', '/api/tasks/1/', {}],
    ['create', '/api/tasks/', { method: 'POST', headers: json, body: JSON.stringify({ title: 't' }) }],
    ['create with Idempotency-Key', '/api/tasks', { method: 'POST', headers: { ...json, 'idempotency-key': 'k' }, body: JSON.stringify({ title: 't' }) }],
    ['patch', '/api/tasks/1', { method: 'PATCH', headers: json, body: JSON.stringify({ title: 't' }) }],
    ['delete', '/api/tasks/1/', { method: 'DELETE' }],
    ['cancel', '/api/tasks/1/cancel/', { method: 'POST' }],
    ['retry', '/api/tasks/1/retry', { method: 'POST' }],
    ['events', '/api/tasks/1/events/', {}],
  ]
  for (const [name, path, init] of calls) {
    test(name, async () => {
      const noDb = createApp({ db: deadDb, redis, keys, eventsMaxLen: 1000, logger })
      const res = await call(noDb, path, init)
      expect(res.status).toBe(503)
      expect(res.body).toEqual({ error: { code: 'unavailable', message: expect.stringContaining('database') } })
      expect(res.headers.get('retry-after')).toBe('1')
    })
  }

  test('validation still answers 400 first: a bad request needs no database', async () => {
    const noDb = createApp({ db: deadDb, redis, keys, eventsMaxLen: 1000, logger })
    expect((await call(noDb, '/api/tasks/abc')).status).toBe(400)
    expect((await call(noDb, '/api/tasks/', { method: 'POST', headers: json, body: '{}' })).status).toBe(400)
  })
})

describe('when Redis is unreachable, Postgres still holds the truth', () => {
  test('POST still creates the task (201), ready in Postgres for a worker to claim', async () => {
    const noRedis = createApp({ db: database.db, redis: deadRedis, keys, eventsMaxLen: 1000, logger })
    const res = await call(noRedis, '/api/tasks/', { method: 'POST', headers: json, body: JSON.stringify({ title: 'offline' }) })
    expect(res.status).toBe(201)
    expect(res.body.status).toBe('PENDING')
    const row = await database.db.selectFrom('tasks').select(['status', 'enqueued_at']).where('id', '=', res.body.id).executeTakeFirstOrThrow()
    expect(row.status).toBe('PENDING')
    expect(row.enqueued_at).not.toBeNull()
  })

  test('cancel still works', async () => {
    const created = await call(app, '/api/tasks/', { method: 'POST', headers: json, body: JSON.stringify({ title: 'x' }) })
    const noRedis = createApp({ db: database.db, redis: deadRedis, keys, eventsMaxLen: 1000, logger })
    const res = await call(noRedis, `/api/tasks/${created.body.id}/cancel`, { method: 'POST' })
    expect(res.status).toBe(200)
    expect(res.body.status).toBe('CANCELLED')
  })
})

describe('routing', () => {
  const unknown: [string, string][] = [
    ['GET', '/'],
    ['GET', '/nope'],
    ['GET', '/api'],
    ['GET', '/api/taskz/'],
    ['GET', '/api/tasks/1/nope/'],
    ['POST', '/api/tasks/1/'],
    ['PUT', '/api/tasks/1/'],
    ['PATCH', '/api/tasks/'],
    ['POST', '/api/tasks/1/events'],
    ['GET', '/api/tasks/1/cancel'],
  ]
  for (const [method, path] of unknown) {
    test(`${method} ${path} is a 404 in the error shape`, async () => {
      const res = await call(app, path, { method })
      expect(res.status).toBe(404)
      expect(Object.keys(res.body)).toEqual(['error'])
      expect(res.body.error.code).toBe('not_found')
      expect(typeof res.body.error.message).toBe('string')
    })
  }

  test('every route answers with and without its trailing slash', async () => {
    const created = await call(app, '/api/tasks', { method: 'POST', headers: json, body: JSON.stringify({ title: 'slashes' }) })
    const id = created.body.id
    const paths = ['/api/tasks', `/api/tasks/${id}`, `/api/tasks/${id}/events`, '/healthz', '/readyz']
    for (const p of paths) {
      expect((await call(app, p)).status).toBe(200)
      expect((await call(app, `${p}/`)).status).toBe(200)
    }
    expect((await call(app, `/api/tasks/${id}/cancel`, { method: 'POST' })).status).toBe(200)
    expect((await call(app, `/api/tasks/${id}/retry/`, { method: 'POST' })).status).toBe(200)
  })
})
