import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createToken } from '../src/domain/tokens/token.service'
import { connect } from './helpers/ws-client'
import { postJson, startSystem, type TestSystem } from './helpers/system'

let sys: TestSystem
let token: string
beforeAll(async () => {
  sys = await startSystem({
    apis: 2,
    workers: 0,
    env: {
      AUTH: 'required',
      MAX_BODY_BYTES: 4000,
      MAX_PAYLOAD_BYTES: 1000,
      MAX_PAYLOAD_DEPTH: 4,
      RATE_LIMIT_PER_SEC: 20,
      WS_MAX_CONNECTIONS_PER_TOKEN: 2,
      WS_MAX_MESSAGE_BYTES: 64,
      CORS_ORIGINS: 'https://app.example.com',
    },
  })
  token = (await createToken(sys.db, 'limits', false)).token
})
afterAll(() => sys.stop())

const auth = () => ({ authorization: `Bearer ${token}` })
const nested = (depth: number): object => (depth <= 1 ? { leaf: true } : { n: nested(depth - 1) })

describe('limits on every input', () => {
  test('a body over MAX_BODY_BYTES is a 413 with the error shape', async () => {
    const res = await postJson(`${sys.http}/api/tasks/`, { title: 't', payload: { pad: 'x'.repeat(5000) } }, auth())
    expect(res.status).toBe(413)
    expect(res.body.error.code).toBe('payload_too_large')
  })

  test('payload size and nesting depth are limited, naming the field', async () => {
    const big = await postJson(`${sys.http}/api/tasks/`, { title: 't', payload: { duration_ms: 1, pad: 'x'.repeat(1500) } }, auth())
    expect(big.status).toBe(400)
    expect(big.body.error.details[0]).toMatchObject({ path: 'payload', message: 'payload must be at most 1000 bytes of JSON' })
    const deep = await postJson(`${sys.http}/api/tasks/`, { title: 't', payload: nested(6) }, auth())
    expect(deep.status).toBe(400)
    expect(deep.body.error.details[0]).toMatchObject({ path: 'payload', message: 'payload must not nest deeper than 4 levels' })
  })

  test('the rate limit holds across API instances: 429 with Retry-After', async () => {
    await Bun.sleep(1000 - (Date.now() % 1000)) // start at the top of a one-second window
    const urls = sys.apis.map((a) => a.url.href)
    const statuses = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        fetch(`${urls[i % 2]}api/tasks/?limit=1`, { headers: auth() }).then(async (r) => ({
          status: r.status,
          retry: r.headers.get('retry-after'),
          body: (await r.json()) as any,
        })),
      ),
    )
    const limited = statuses.filter((s) => s.status === 429)
    expect(statuses.filter((s) => s.status === 200).length).toBeLessThanOrEqual(20)
    expect(limited.length).toBeGreaterThanOrEqual(10)
    expect(limited[0]).toMatchObject({ retry: '1', body: { error: { code: 'rate_limited' } } })
  })

  test('sockets per token are limited before the upgrade', async () => {
    await Bun.sleep(1000) // a fresh rate-limit window
    const a = await connect(`${sys.ws}/ws/tasks/?token=${token}`)
    const b = await connect(`${sys.ws}/ws/tasks/?token=${token}`)
    const third = await fetch(`${sys.http}/ws/tasks/?token=${token}`, {
      headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' },
    })
    expect(third.status).toBe(429)
    expect(((await third.json()) as any).error.code).toBe('too_many_connections')
    // README promises Retry-After on every 429; a socket slot frees only when another closes.
    expect(third.headers.get('retry-after')).toBe('5')
    a.close()
    b.close()
  })

  test('binary, unexpected and oversized client frames close the socket with a clear code; ping is answered', async () => {
    await Bun.sleep(300)
    const cases: [string | Uint8Array, number][] = [
      [new Uint8Array([1, 2, 3]), 1003],
      ['{"subscribe": "everything"}', 1008],
      ['x'.repeat(200), 1009],
    ]
    for (const [frame, code] of cases) {
      const ws = await connect(`${sys.ws}/ws/tasks/?token=${token}`)
      await ws.waitFor((m) => m.kind === 'hello')
      ws.ws.send('ping')
      await ws.waitFor((m) => m.kind === 'pong')
      ws.ws.send(frame)
      expect((await ws.closed).code).toBe(code)
    }
    expect((await fetch(`${sys.http}/healthz`)).status).toBe(200) // and the process is fine
  })

  test('CORS answers only listed origins; WebSocket upgrades from other origins are refused', async () => {
    const allowed = await fetch(`${sys.http}/api/tasks/`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    })
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com')
    const other = await fetch(`${sys.http}/api/tasks/`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    })
    expect(other.headers.get('access-control-allow-origin')).toBeNull()
    const upgrade = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' }
    const evil = await fetch(`${sys.http}/ws/tasks/?token=${token}`, { headers: { ...upgrade, origin: 'https://evil.example' } })
    expect(evil.status).toBe(403)
    expect(((await evil.json()) as any).error.code).toBe('forbidden_origin')
  })

  test('responses carry secure headers and never a stack trace', async () => {
    const res = await fetch(`${sys.http}/api/tasks/abc`, { headers: auth() })
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN')
    expect(res.headers.get('x-request-id')).toBeTruthy()
    expect(await res.text()).not.toMatch(/\bat .*\.ts:\d+/)
  })
})

describe('the total socket limit of an instance', () => {
  let small: TestSystem
  beforeAll(async () => {
    small = await startSystem({ workers: 0, env: { WS_MAX_CONNECTIONS: 2 } })
  })
  afterAll(() => small.stop())

  test('is refused before the upgrade once reached, and frees up when a socket closes', async () => {
    const upgrade = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' }
    const a = await connect(`${small.ws}/ws/tasks/`)
    const b = await connect(`${small.ws}/ws/tasks/`)
    const third = await fetch(`${small.http}/ws/tasks/`, { headers: upgrade })
    expect(third.status).toBe(429)
    expect(((await third.json()) as any).error.code).toBe('too_many_connections')
    // README promises Retry-After on every 429; a socket slot frees only when another closes.
    expect(third.headers.get('retry-after')).toBe('5')
    a.close()
    await a.closed
    await Bun.sleep(50)
    const c = await connect(`${small.ws}/ws/tasks/`)
    c.close()
    b.close()
  })
})
