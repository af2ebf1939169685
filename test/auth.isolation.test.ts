import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createToken } from '../src/domain/tokens/token.service'
import { revokeTokenByName } from '../src/domain/tokens/token.repository'
import { connect } from './helpers/ws-client'
import { eventually, startSystem, type TestSystem } from './helpers/system'

let sys: TestSystem
let alice: string, bob: string, admin: string, revoked: string
beforeAll(async () => {
  sys = await startSystem({ env: { AUTH: 'required', DEMO_WORK_MS: 0 } })
  alice = (await createToken(sys.db, 'alice', false)).token
  bob = (await createToken(sys.db, 'bob', false)).token
  admin = (await createToken(sys.db, 'root', true)).token
  revoked = (await createToken(sys.db, 'soon-revoked', false)).token
})
afterAll(() => sys.stop())

const call = async (token: string | null, method: string, path: string, body?: unknown) => {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (token !== null) headers.authorization = `Bearer ${token}`
  const res = await fetch(`${sys.http}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers }
}

/** tl_<id>_<secret>: the base64url secret may itself hold '_', so it is everything after the id. */
const secretOf = (token: string) => token.replace(/^tl_\d+_/, '')

describe('API tokens', () => {
  test('no token, a forged one or a truncated one is a 401 that says how to get a token', async () => {
    for (const token of [null, 'nonsense', alice.slice(0, -1), alice.replace(/.$/, alice.endsWith('A') ? 'B' : 'A'), `tl_999_${secretOf(alice)}`]) {
      const res = await call(token, 'GET', '/api/tasks/')
      expect(res.status).toBe(401)
      expect(res.body.error.code).toBe('unauthorized')
      expect(res.body.error.message).toContain('bun run token create')
      expect(res.headers.get('www-authenticate')).toBe('Bearer')
    }
  })

  test("a real secret under another token's id is a 401, also when the secret holds '_'", async () => {
    // About half of all secrets hold a '_'; make sure this run has one.
    let token = ''
    for (let i = 0; i < 64 && !secretOf(token).includes('_'); i++) token = (await createToken(sys.db, `underscore-${i}`, false)).token
    expect(secretOf(token)).toContain('_')
    const id = token.match(/^tl_(\d+)_/)![1]
    expect(`tl_${id}_${secretOf(token)}`).toBe(token)
    expect((await call(token, 'GET', '/api/tasks/')).status).toBe(200)
    expect((await call(`tl_${Number(id) + 1000}_${secretOf(token)}`, 'GET', '/api/tasks/')).status).toBe(401)
    expect((await call(`tl_${id}_${secretOf(alice)}`, 'GET', '/api/tasks/')).status).toBe(401)
  })

  test('health endpoints need no token', async () => {
    expect((await call(null, 'GET', '/healthz')).status).toBe(200)
  })

  test("another owner's task does not exist for you, over REST and over WebSocket", async () => {
    const mine = await call(alice, 'POST', '/api/tasks/', { title: 'alice only' })
    expect(mine.status).toBe(201)
    const id = mine.body.id
    expect((await call(alice, 'GET', `/api/tasks/${id}/`)).status).toBe(200)
    for (const [method, path, body] of [
      ['GET', `/api/tasks/${id}/`],
      ['GET', `/api/tasks/${id}/events/`],
      ['PATCH', `/api/tasks/${id}/`, { title: 'stolen' }],
      ['POST', `/api/tasks/${id}/cancel/`],
      ['POST', `/api/tasks/${id}/retry/`],
      ['DELETE', `/api/tasks/${id}/`],
    ] as const) {
      const res = await call(bob, method, path, body)
      expect(res.status).toBe(404)
      expect(res.body.error).toEqual({ code: 'not_found', message: `task ${id} not found` })
    }
    expect((await call(alice, 'GET', `/api/tasks/${id}/`)).body.title).toBe('alice only')
    const bobsList = await call(bob, 'GET', '/api/tasks/')
    expect(bobsList.body.results.map((t: any) => t.id)).not.toContain(id)
    expect((await call(admin, 'GET', `/api/tasks/${id}/`)).status).toBe(200)
    await expect(connect(`${sys.ws}/ws/tasks/${id}/?token=${bob}`)).rejects.toThrow()
    const own = await connect(`${sys.ws}/ws/tasks/${id}/?token=${alice}`)
    expect((await own.waitFor(() => true)).task_id).toBe(id)
    own.close()
  })

  test('the all-tasks feed streams only your own tasks; an admin sees everyone', async () => {
    const bobFeed = await connect(`${sys.ws}/ws/tasks/?token=${bob}`)
    const adminFeed = await connect(`${sys.ws}/ws/tasks/?token=${admin}`)
    await Promise.all([bobFeed.waitFor((m) => m.kind === 'hello'), adminFeed.waitFor((m) => m.kind === 'hello')])
    const a = (await call(alice, 'POST', '/api/tasks/', { title: 'a' })).body
    const b = (await call(bob, 'POST', '/api/tasks/', { title: 'b' })).body
    await adminFeed.waitFor((m) => m.task_id === a.id && m.status === 'COMPLETED')
    await adminFeed.waitFor((m) => m.task_id === b.id && m.status === 'COMPLETED')
    await bobFeed.waitFor((m) => m.task_id === b.id && m.status === 'COMPLETED')
    bobFeed.close()
    adminFeed.close()
    expect(bobFeed.messages.some((m) => m.task_id === a.id)).toBe(false)
    // a resumed feed is filtered the same way
    const resumed = await connect(`${sys.ws}/ws/tasks/?after=0&token=${bob}`)
    await resumed.waitFor((m) => m.task_id === b.id && m.status === 'COMPLETED')
    resumed.close()
    const changes = resumed.messages.filter((m) => m.kind === 'change')
    const bobsOwnerId = changes.find((m) => m.task_id === b.id).owner_id
    expect(changes.every((m) => m.owner_id === bobsOwnerId)).toBe(true)
    expect(changes.some((m) => m.task_id === a.id)).toBe(false)
  })

  test('a token also works as a WebSocket subprotocol, the way browsers can send it', async () => {
    const t = (await call(alice, 'POST', '/api/tasks/', { title: 'proto' })).body
    const ws = new WebSocket(`${sys.ws}/ws/tasks/${t.id}/`, ['taskline', alice])
    const first = await new Promise<any>((resolve, reject) => {
      ws.onmessage = (e) => resolve(JSON.parse(String(e.data)))
      ws.onerror = () => reject(new Error('refused'))
    })
    expect(ws.protocol).toBe('taskline')
    expect(first.task_id).toBe(t.id)
    ws.close()
  })

  test('a revoked token is refused on the next requests and its open sockets are closed', async () => {
    const t = (await call(revoked, 'POST', '/api/tasks/', { title: 'mine' })).body
    const ws = await connect(`${sys.ws}/ws/tasks/${t.id}/?token=${revoked}`)
    expect(await revokeTokenByName(sys.db, 'soon-revoked')).toBe(true)
    // verified tokens are remembered for 2 s per instance
    await eventually(async () => (await call(revoked, 'GET', '/api/tasks/')).status === 401, 5000, 200)
    const closed = await Promise.race([ws.closed, Bun.sleep(5000).then(() => null)])
    expect(closed).toMatchObject({ code: 4401, reason: 'API token revoked' })
  })

  test('SQL and HTML in titles round-trip unchanged and harmless', async () => {
    for (const title of [`'); DROP TABLE tasks; --`, '<script>alert(1)</script>', '" OR 1=1 --', `${'\u202e\u0000'.slice(0, 1)}rtl`]) {
      const created = await call(alice, 'POST', '/api/tasks/', { title })
      expect(created.status).toBe(201)
      expect(created.headers.get('content-type')).toContain('application/json')
      expect((await call(alice, 'GET', `/api/tasks/${created.body.id}`)).body.title).toBe(title)
    }
    expect((await call(admin, 'GET', '/api/tasks/?limit=1')).status).toBe(200) // the table is still there
  })
})
