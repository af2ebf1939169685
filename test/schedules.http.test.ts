import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createToken } from '../src/domain/tokens/token.service'
import { startSystem, type TestSystem } from './helpers/system'

let sys: TestSystem
let alice: string, bob: string, admin: string
beforeAll(async () => {
  // No worker: these tests are about the API; nothing ticks.
  sys = await startSystem({ workers: 0, env: { AUTH: 'required' } })
  alice = (await createToken(sys.db, 'alice', false)).token
  bob = (await createToken(sys.db, 'bob', false)).token
  admin = (await createToken(sys.db, 'root', true)).token
})
afterAll(() => sys.stop())

const call = async (token: string, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${sys.http}${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

const valid = { name: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Paris', task: { title: 'nightly report', type: 'demo', payload: { steps: 2 } } }
const paths = (body: { error: { details?: { path: string }[] } }) => body.error.details?.map((d) => d.path)

describe('schedules over HTTP', () => {
  test('create, get, list with the next run, pause, resume, delete', async () => {
    const created = await call(alice, 'POST', '/api/schedules/', valid)
    expect(created.status).toBe(201)
    const s = created.body
    expect(s).toMatchObject({ name: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Paris', paused: false, last_run_at: null })
    expect(s.task).toEqual({ title: 'nightly report', type: 'demo', payload: { steps: 2 }, max_attempts: 3, queue: 'default', priority: 0 })
    // 03:00 in Paris is 02:00 UTC in December.
    expect(new Date(s.next_run_at).getTime()).toBeGreaterThan(Date.now())
    expect(s.next_run_at).toMatch(/T02:00:00\.000Z$/)

    expect((await call(alice, 'GET', `/api/schedules/${s.id}/`)).body).toEqual(s)
    const list = await call(alice, 'GET', '/api/schedules/')
    expect(list.status).toBe(200)
    expect(list.body.results.map((r: { id: number }) => r.id)).toEqual([s.id])

    const paused = await call(alice, 'POST', `/api/schedules/${s.id}/pause`)
    expect(paused.status).toBe(200)
    expect(paused.body).toMatchObject({ paused: true, next_run_at: null })
    const resumed = await call(alice, 'POST', `/api/schedules/${s.id}/resume`)
    expect(resumed.body).toMatchObject({ paused: false, next_run_at: s.next_run_at })

    expect((await call(alice, 'DELETE', `/api/schedules/${s.id}/`)).status).toBe(204)
    expect((await call(alice, 'GET', `/api/schedules/${s.id}/`)).status).toBe(404)
  })

  test('a seconds field is accepted; the timezone defaults to UTC', async () => {
    const r = await call(alice, 'POST', '/api/schedules/', { name: 'every-second', cron: '*/1 * * * * *', task: { title: 't' } })
    expect(r.status).toBe(201)
    expect(r.body.timezone).toBe('UTC')
    expect(new Date(r.body.next_run_at).getTime() - Date.now()).toBeLessThanOrEqual(1000)
    expect((await call(alice, 'POST', `/api/schedules/${r.body.id}/pause`)).status).toBe(200)
  })

  test('a bad cron, timezone, template or payload is a 400 naming the field; nothing is stored', async () => {
    const before = (await call(admin, 'GET', '/api/schedules/')).body.results.length
    const cases: [unknown, string][] = [
      [{ ...valid, name: 'x1', cron: 'every day' }, 'cron'],
      [{ ...valid, name: 'x2', cron: '61 * * * *' }, 'cron'],
      [{ ...valid, name: 'x3', cron: '* * * * * * * *' }, 'cron'],
      [{ ...valid, name: 'x4', timezone: 'Mars/Olympus' }, 'timezone'],
      [{ ...valid, name: 'x5', task: { ...valid.task, payload: { steps: 'many' } } }, 'task.payload.steps'],
      [{ ...valid, name: 'x6', task: { ...valid.task, type: 'no-such-type' } }, 'task.type'],
      [{ ...valid, name: 'x7', task: { ...valid.task, title: '' } }, 'task.title'],
      [{ ...valid, name: 'x8', task: { ...valid.task, queue: 'no spaces' } }, 'task.queue'],
      [{ ...valid, name: 'x11', task: { ...valid.task, priority: 11 } }, 'task.priority'],
      [{ ...valid, name: '' }, 'name'],
      [{ name: 'x9', task: valid.task }, 'cron'],
      [{ ...valid, name: 'x10', task: undefined }, 'task'],
    ]
    for (const [body, field] of cases) {
      const r = await call(alice, 'POST', '/api/schedules/', body)
      expect({ field, status: r.status, code: r.body.error.code }).toEqual({ field, status: 400, code: 'validation_error' })
      expect(paths(r.body)).toContain(field)
    }
    expect((await call(admin, 'GET', '/api/schedules/')).body.results.length).toBe(before)
    // Each says what is wrong with what was sent, not that nothing was.
    const message = async (body: unknown) => (await call(alice, 'POST', '/api/schedules/', body)).body.error.message
    expect(await message({ ...valid, name: 'm1', cron: 5 })).toBe('cron: cron must be a string')
    expect(await message({ ...valid, name: 'm2', cron: '*'.repeat(6000) })).toBe('cron: cron must be at most 200 characters')
    expect(await message({ ...valid, name: 7 })).toBe('name: name must be a string')
    expect(await message({ ...valid, name: 'm3', task: { ...valid.task, max_attempts: 1e300 } })).toBe('task.max_attempts: max_attempts must be at most 100')
  })

  test('a name is unique per owner: 409 for the same owner, fine for another', async () => {
    const body = { ...valid, name: 'dup' }
    expect((await call(alice, 'POST', '/api/schedules/', body)).status).toBe(201)
    const again = await call(alice, 'POST', '/api/schedules/', body)
    expect(again.status).toBe(409)
    expect(again.body.error.code).toBe('conflict')
    expect((await call(bob, 'POST', '/api/schedules/', body)).status).toBe(201)
  })

  test("another owner's schedule is a 404 everywhere and absent from lists; an admin sees all", async () => {
    const mine = (await call(alice, 'POST', '/api/schedules/', { ...valid, name: 'alice-only' })).body
    for (const [method, path] of [
      ['GET', `/api/schedules/${mine.id}/`],
      ['POST', `/api/schedules/${mine.id}/pause`],
      ['POST', `/api/schedules/${mine.id}/resume`],
      ['DELETE', `/api/schedules/${mine.id}/`],
    ] as const) {
      const r = await call(bob, method, path)
      expect({ method, path, status: r.status }).toEqual({ method, path, status: 404 })
      expect(r.body.error.code).toBe('not_found')
    }
    expect((await call(alice, 'GET', `/api/schedules/${mine.id}/`)).body.paused).toBe(false)
    const bobs = (await call(bob, 'GET', '/api/schedules/')).body.results
    expect(bobs.some((s: { id: number }) => s.id === mine.id)).toBe(false)
    const all = (await call(admin, 'GET', '/api/schedules/')).body.results
    expect(all.some((s: { id: number }) => s.id === mine.id)).toBe(true)
    expect((await call(admin, 'POST', `/api/schedules/${mine.id}/pause`)).status).toBe(200)
  })

  test('a bad id is a 400, an unknown one a 404', async () => {
    expect((await call(alice, 'GET', '/api/schedules/abc/')).status).toBe(400)
    expect((await call(alice, 'GET', '/api/schedules/999999/')).status).toBe(404)
  })
})
