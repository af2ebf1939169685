import { beforeAll, describe, expect, test } from 'bun:test'
import { appUnderTest } from './helpers/app'

/**
 * Input validation over HTTP: every bad request is a 400/415 in the one error
 * shape, names the offending field, and creates nothing.
 */

const h = appUnderTest()
const { redis, keys, call } = h

const json = { 'content-type': 'application/json' }
const post = (body: unknown, headers: Record<string, string> = {}) =>
  call('/api/tasks/', { method: 'POST', headers: { ...json, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) })

/** The one error shape: {error: {code, message, details?}} and nothing else. */
function expectError(body: any, code: string, paths?: string[]) {
  expect(Object.keys(body)).toEqual(['error'])
  expect(body.error.code).toBe(code)
  expect(typeof body.error.message).toBe('string')
  expect(body.error.message.length).toBeGreaterThan(0)
  expect(body.error.message).not.toContain('\n')
  for (const k of Object.keys(body.error)) expect(['code', 'message', 'details']).toContain(k)
  if (paths) {
    expect(Array.isArray(body.error.details)).toBe(true)
    for (const d of body.error.details) {
      expect(Object.keys(d).sort()).toEqual(['message', 'path'])
      expect(typeof d.message).toBe('string')
    }
    expect(body.error.details.map((d: any) => d.path)).toEqual(expect.arrayContaining(paths))
    // the sentence leads with the first offending field
    expect(body.error.message).toStartWith(`${body.error.details[0].path}: `)
  }
}

const countTasks = () => h.countTasks()
const jobsLength = () => redis.xlen(keys.shards[0]!.jobs)

describe('POST /api/tasks/ rejects bad bodies with 400 naming the field', () => {
  const cases: [string, unknown, string][] = [
    ['missing title', {}, 'title'],
    ['empty title', { title: '' }, 'title'],
    ['blank title (empty after trim)', { title: '   \t ' }, 'title'],
    ['title over 200 chars', { title: 'x'.repeat(201) }, 'title'],
    ['title a number', { title: 42 }, 'title'],
    ['title null', { title: null }, 'title'],
    ['title an object', { title: { a: 1 } }, 'title'],
    ['title with a NUL character', { title: 'a\u0000b' }, 'title'],
    ['unknown type', { title: 't', type: 'nope' }, 'type'],
    ['type inherited from Object.prototype ("constructor")', { title: 't', type: 'constructor' }, 'type'],
    ['type "toString"', { title: 't', type: 'toString' }, 'type'],
    ['type "__proto__"', { title: 't', type: '__proto__' }, 'type'],
    ['empty type', { title: 't', type: '' }, 'type'],
    ['type a number', { title: 't', type: 1 }, 'type'],
    ['payload an array', { title: 't', payload: [1, 2] }, 'payload'],
    ['payload a string', { title: 't', payload: 'x' }, 'payload'],
    ['payload null', { title: 't', payload: null }, 'payload'],
    ['payload a number', { title: 't', payload: 7 }, 'payload'],
    ['payload with a field the demo handler does not know', { title: 't', payload: { colour: 'red' } }, 'payload.colour'],
    ['payload steps 0', { title: 't', payload: { steps: 0 } }, 'payload.steps'],
    ['payload steps not an integer', { title: 't', payload: { steps: 1.5 } }, 'payload.steps'],
    ['payload duration_ms negative', { title: 't', payload: { duration_ms: -1 } }, 'payload.duration_ms'],
    ['payload fail not a boolean', { title: 't', payload: { fail: 'yes' } }, 'payload.fail'],
    ['unknown top-level field', { title: 't', colour: 'red' }, 'colour'],
    ['max_attempts 0', { title: 't', max_attempts: 0 }, 'max_attempts'],
    ['max_attempts 101', { title: 't', max_attempts: 101 }, 'max_attempts'],
    ['max_attempts not an integer', { title: 't', max_attempts: 1.5 }, 'max_attempts'],
    ['max_attempts a string', { title: 't', max_attempts: '3' }, 'max_attempts'],
    ['max_attempts negative', { title: 't', max_attempts: -2 }, 'max_attempts'],
    ['depends_on naming a task twice', { title: 't', depends_on: [1, 2, 1] }, 'depends_on.2'],
  ]
  for (const [name, body, path] of cases) {
    test(name, async () => {
      const before = await countTasks()
      const res = await post(body)
      expect(res.status).toBe(400)
      expectError(res.body, 'validation_error', [path])
      expect(await countTasks()).toBe(before)
    })
  }

  test('each unknown field gets its own detail', async () => {
    const res = await post({ title: 't', colour: 'red', size: 3 })
    expect(res.status).toBe(400)
    expectError(res.body, 'validation_error', ['colour', 'size'])
    expect(res.body.error.details).toHaveLength(2)
  })

  test('several bad fields are all reported', async () => {
    const res = await post({ title: '', max_attempts: 0 })
    expect(res.status).toBe(400)
    expectError(res.body, 'validation_error', ['title', 'max_attempts'])
  })

  test('a missing title says it is required', async () => {
    const res = await post({})
    expect(res.body.error.message).toBe('title: title is required')
  })

  test("a number far out of range is told the field's own limit first, not zod's safe-integer range", async () => {
    expect((await post('{"title":"t","max_attempts":1e308}')).body.error.message).toBe('max_attempts: max_attempts must be at most 100')
    expect((await post({ title: 't', timeout_ms: 2 ** 60 })).body.error.message).toBe('timeout_ms: timeout_ms must be at most a day (86400000)')
    expect((await post({ title: 't', delay_ms: 2 ** 60 })).body.error.message).toBe('delay_ms: delay_ms must be at most a year')
  })

  test('every list refuses a query parameter it does not know, naming it, as /api/tasks/ does', async () => {
    for (const path of ['/api/tasks/', '/api/queues/', '/api/stats/', '/api/schedules/', '/api/task-types/', '/api/workers/']) {
      const res = await call(`${path}?colour=red`)
      expect({ path, status: res.status, fields: res.body.error?.details?.map((d: any) => d.path) }).toEqual({ path, status: 400, fields: ['colour'] })
    }
  })

  test('a page size given twice, or not in plain digits, is a 400 saying so', async () => {
    const limit = async (query: string) => (await call(`/api/tasks/?${query}`)).body.error?.message
    expect(await limit('limit=1&limit=2')).toBe('limit: limit must be given once')
    for (const bad of ['0', '101', '1e1', '0x10', ' 5', '-1'])
      expect(await limit(`limit=${encodeURIComponent(bad)}`)).toBe('limit: limit must be an integer from 1 to 100')
    expect((await call('/api/tasks/?limit=100')).status).toBe(200)
  })

  for (const [name, raw] of [
    ['an array', '[]'],
    ['null', 'null'],
    ['a string', '"hello"'],
    ['a number', '42'],
  ] as const) {
    test(`a JSON body that is ${name} is a 400, not a 500`, async () => {
      const res = await post(raw)
      expect(res.status).toBe(400)
      expectError(res.body, 'validation_error')
    })
  }

  test('the edges are accepted: 200-char title, max_attempts 1 and 100, full demo payload', async () => {
    for (const body of [
      { title: 'x'.repeat(200) },
      { title: 't', max_attempts: 1 },
      { title: 't', max_attempts: 100 },
      { title: 't', type: 'demo', payload: { duration_ms: 0, steps: 1000, fail: true } },
    ]) {
      const res = await post(body)
      expect(res.status).toBe(201)
    }
  })
})

describe('bodies that are not JSON', () => {
  for (const [name, raw] of [
    ['malformed', '{"title": '],
    ['empty', ''],
    ['plain text', 'title=x'],
  ] as const) {
    test(`${name} JSON is a 400 invalid_json`, async () => {
      const before = await jobsLength()
      const res = await post(raw)
      expect(res.status).toBe(400)
      expectError(res.body, 'invalid_json')
      expect(await jobsLength()).toBe(before)
    })
  }

  test('PATCH with malformed JSON is a 400 invalid_json', async () => {
    const created = await post({ title: 't' })
    const res = await call(`/api/tasks/${created.body.id}/`, { method: 'PATCH', headers: json, body: '{oops' })
    expect(res.status).toBe(400)
    expectError(res.body, 'invalid_json')
  })

  const contentTypes: [string, Record<string, string>][] = [
    ['no content type', {}],
    ['text/plain', { 'content-type': 'text/plain' }],
    ['form-urlencoded', { 'content-type': 'application/x-www-form-urlencoded' }],
    ['multipart', { 'content-type': 'multipart/form-data; boundary=x' }],
    ['application/jsonx', { 'content-type': 'application/jsonx' }],
  ]
  for (const [name, headers] of contentTypes) {
    test(`POST with ${name} is a 415`, async () => {
      const before = await countTasks()
      const res = await call('/api/tasks/', { method: 'POST', headers, body: JSON.stringify({ title: 't' }) })
      expect(res.status).toBe(415)
      expectError(res.body, 'unsupported_media_type')
      expect(await countTasks()).toBe(before)
    })
    test(`PATCH with ${name} is a 415`, async () => {
      const res = await call('/api/tasks/1/', { method: 'PATCH', headers, body: JSON.stringify({ title: 't' }) })
      expect(res.status).toBe(415)
      expectError(res.body, 'unsupported_media_type')
    })
  }

  test('application/json with a charset, any case, and +json types are accepted', async () => {
    for (const type of ['application/json; charset=utf-8', 'Application/JSON', 'application/vnd.taskline+json']) {
      const res = await call('/api/tasks/', { method: 'POST', headers: { 'content-type': type }, body: JSON.stringify({ title: 't' }) })
      expect(res.status).toBe(201)
    }
  })
})

describe('Idempotency-Key header validation', () => {
  test('an empty key is a 400 naming the header', async () => {
    const res = await post({ title: 't' }, { 'idempotency-key': '' })
    expect(res.status).toBe(400)
    expectError(res.body, 'validation_error', ['idempotency-key'])
  })

  test('a key over 200 characters is a 400', async () => {
    const res = await post({ title: 't' }, { 'idempotency-key': 'k'.repeat(201) })
    expect(res.status).toBe(400)
    expectError(res.body, 'validation_error', ['idempotency-key'])
  })
})

describe('PATCH /api/tasks/:id/ body validation', () => {
  let id: number
  beforeAll(async () => {
    id = (await post({ title: 'patch me' })).body.id
  })

  const cases: [string, unknown, string][] = [
    ['missing title', {}, 'title'],
    ['blank title', { title: '  ' }, 'title'],
    ['long title', { title: 'y'.repeat(201) }, 'title'],
    ['title not a string', { title: false }, 'title'],
    ['other fields are not patchable', { title: 'ok', status: 'COMPLETED' }, 'status'],
  ]
  for (const [name, body, path] of cases) {
    test(name, async () => {
      const res = await call(`/api/tasks/${id}/`, { method: 'PATCH', headers: json, body: JSON.stringify(body) })
      expect(res.status).toBe(400)
      expectError(res.body, 'validation_error', [path])
      const row = await h.db.selectFrom('tasks').select(['title', 'seq', 'status']).where('id', '=', id).executeTakeFirstOrThrow()
      expect(row).toEqual({ title: 'patch me', seq: 1, status: 'PENDING' })
    })
  }
})

describe('bad task ids are a 400 naming path "id" on every route', () => {
  const badIds = ['abc', '0', '-1', '1.5', '99999999999999999999', '9007199254740993', '1e3', '0x10', '%201', '1%20', '01x', 'NaN', 'Infinity']
  const routes: [string, (id: string) => [string, RequestInit]][] = [
    ['GET', (id) => [`/api/tasks/${id}/`, {}]],
    ['PATCH', (id) => [`/api/tasks/${id}/`, { method: 'PATCH', headers: json, body: JSON.stringify({ title: 't' }) }]],
    ['DELETE', (id) => [`/api/tasks/${id}`, { method: 'DELETE' }]],
    ['cancel', (id) => [`/api/tasks/${id}/cancel/`, { method: 'POST' }]],
    ['retry', (id) => [`/api/tasks/${id}/retry`, { method: 'POST' }]],
    ['events', (id) => [`/api/tasks/${id}/events/`, {}]],
  ]
  for (const [route, build] of routes) {
    test(route, async () => {
      for (const id of badIds) {
        const res = await call(...build(id))
        expect({ id, status: res.status }).toEqual({ id, status: 400 })
        expectError(res.body, 'validation_error', ['id'])
        expect(res.body.error.details.every((d: any) => d.path === 'id')).toBe(true)
      }
    })
  }

  test('a well-formed id that does not exist is a 404, not a 400', async () => {
    const res = await call('/api/tasks/9007199254740991/')
    expect(res.status).toBe(404)
    expectError(res.body, 'not_found')
  })
})

describe('GET /api/tasks/ query validation', () => {
  const cases: [string, string][] = [
    ['limit=0', 'limit'],
    ['limit=101', 'limit'],
    ['limit=-5', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=2.5', 'limit'],
    ['limit=', 'limit'],
    ['status=nope', 'status'],
    ['status=pending', 'status'],
    ['status=', 'status'],
    ['cursor=abc', 'cursor'],
    ['cursor=0', 'cursor'],
    ['cursor=-3', 'cursor'],
    ['cursor=1.5', 'cursor'],
    ['cursor=', 'cursor'],
    ['cursor=1e3', 'cursor'],
    ['foo=1', 'foo'],
    ['offset=10', 'offset'],
  ]
  for (const [query, path] of cases) {
    test(`?${query} is a 400 naming ${path}`, async () => {
      const res = await call(`/api/tasks/?${query}`)
      expect(res.status).toBe(400)
      expectError(res.body, 'validation_error', [path])
    })
  }

  test('the same bad query without the trailing slash is also a 400', async () => {
    const res = await call('/api/tasks?limit=0')
    expect(res.status).toBe(400)
    expectError(res.body, 'validation_error', ['limit'])
  })
})
