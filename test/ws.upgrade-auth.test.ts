import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'kysely'
import { createToken } from '../src/domain/tokens/token.service'
import { requestFrom, upgradeHeaders } from './helpers/peer-http'
import { connect } from './helpers/ws-client'
import { startSystem, type TestSystem } from './helpers/system'

const perSecond = 5
let sys: TestSystem
beforeAll(async () => {
  sys = await startSystem({ workers: 0, env: { AUTH: 'required', RATE_LIMIT_PER_SEC: perSecond } })
})
afterAll(() => sys.stop())

// The rate limit is per token: each test has its own, so one test's requests never throttle another's.
let tokens = 0
const freshToken = async () => (await createToken(sys.db, `upgrade-${++tokens}`, false)).token
const upgrade = (path: string, headers: Record<string, string>) => requestFrom(`${sys.http}${path}`, { headers: upgradeHeaders(headers) })
const taskCount = async () => Number((await sql<{ n: string }>`select count(*) as n from tasks`.execute(sys.db)).rows[0]!.n)

describe('the WebSocket subprotocol', () => {
  test('the fixed name is selected whatever the order of the offer, and the token is never echoed', async () => {
    const token = await freshToken()
    for (const offer of [`taskline, ${token}`, `${token}, taskline`]) {
      const res = await upgrade('/ws/tasks/', { 'sec-websocket-protocol': offer })
      expect(res.status).toBe(101)
      expect(res.headers['sec-websocket-protocol']).toBe('taskline')
    }
  })

  test('an offer without the fixed name is a 400 naming the header, not a 101 echoing the token', async () => {
    const token = await freshToken()
    const res = await upgrade('/ws/tasks/', { 'sec-websocket-protocol': token })
    expect(res.status).toBe(400)
    expect(res.headers['sec-websocket-protocol']).toBeUndefined()
    const { error } = JSON.parse(res.body)
    expect(error.code).toBe('validation_error')
    expect(error.details).toEqual([{ path: 'sec-websocket-protocol', message: expect.stringContaining('"taskline"') }])
    expect(res.body).not.toContain(token)
  })

  test('a token offered after the fixed name that is not one is refused as invalid, not as missing', async () => {
    for (const offer of ['taskline, bad', 'taskline, tl_1_forged']) {
      const res = await upgrade('/ws/tasks/', { 'sec-websocket-protocol': offer })
      expect(res.status).toBe(401)
      expect(JSON.parse(res.body).error.message).toStartWith('the API token is invalid or revoked')
    }
    expect(JSON.parse((await upgrade('/ws/tasks/', { 'sec-websocket-protocol': 'taskline' })).body).error.message).toStartWith('an API token is required')
  })

  test('no offer at all still upgrades, with the token in Authorization or ?token=, and selects nothing', async () => {
    const token = await freshToken()
    for (const res of [await upgrade('/ws/tasks/', { authorization: `Bearer ${token}` }), await upgrade(`/ws/tasks/?token=${token}`, {})]) {
      expect(res.status).toBe(101)
      expect(res.headers['sec-websocket-protocol']).toBeUndefined()
    }
  })

  test("a WebSocket client offering ['taskline', token] opens with protocol taskline", async () => {
    const ws = await connect(`${sys.ws}/ws/tasks/`, await freshToken())
    expect(ws.ws.protocol).toBe('taskline')
    await ws.waitFor((m) => m.kind === 'hello')
    ws.close()
  })
})

describe('tokens outside the Authorization header', () => {
  test('do not authenticate a plain request that claims to be an upgrade, on any route', async () => {
    const token = await freshToken()
    const before = await taskCount()
    const post = { method: 'POST', body: JSON.stringify({ title: 'smuggled' }) }
    const attempts = [
      { path: `/api/tasks/?token=${token}`, ...post, headers: upgradeHeaders({ 'content-type': 'application/json' }) },
      { path: '/api/tasks/', ...post, headers: upgradeHeaders({ 'content-type': 'application/json', 'sec-websocket-protocol': `taskline, ${token}` }) },
      { path: `/api/tasks/?token=${token}`, headers: upgradeHeaders() },
      { path: `/ws/tasks/?token=${token}`, method: 'POST', headers: upgradeHeaders() },
    ]
    for (const { path, ...init } of attempts) {
      const res = await requestFrom(`${sys.http}${path}`, init)
      expect({ path, method: init.method, status: res.status }).toEqual({ path, method: init.method, status: 401 })
      expect(JSON.parse(res.body).error.code).toBe('unauthorized')
    }
    expect(await taskCount()).toBe(before)
  })
})

describe('upgrades and the rate limit', () => {
  test('upgrades count against the per-token limit: past it they get 429 with Retry-After, not a socket', async () => {
    const token = await freshToken()
    const answers = await Promise.all(Array.from({ length: perSecond * 4 }, () => upgrade('/ws/tasks/', { authorization: `Bearer ${token}` })))
    const limited = answers.filter((r) => r.status === 429)
    // However the burst falls across one-second windows, at most two windows' worth open.
    expect(answers.filter((r) => r.status === 101).length).toBeLessThanOrEqual(perSecond * 2)
    expect(limited.length).toBeGreaterThan(0)
    expect(JSON.parse(limited[0]!.body).error.code).toBe('rate_limited')
    expect(limited[0]!.headers['retry-after']).toBe('1')
  })
})
