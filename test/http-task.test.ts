import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'

/**
 * The built-in http type end to end: the API, a worker, and a local server
 * standing in for the receiver, which records every request it gets and
 * answers each path as the test says.
 */

// Copied verbatim from docs/http-tasks.md; the last test checks the page still holds exactly this.
// verifier:start
export function verifyTasklineSignature(header: string, rawBody: string, secret: string, toleranceS = 300, nowS = Date.now() / 1000): boolean {
  const parts = new Map(header.split(',').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]))
  const t = parts.get('t') ?? ''
  const v1 = Buffer.from(parts.get('v1') ?? '', 'hex')
  if (!/^\d+$/.test(t) || Math.abs(nowS - Number(t)) > toleranceS) return false
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest()
  return v1.length === expected.length && timingSafeEqual(v1, expected)
}
// verifier:end

const secret = 'test-signing-secret-0123456789'

interface Received {
  path: string
  method: string
  headers: Headers
  body: string
  /** performance.now() when the request arrived. */
  at: number
  /** Set when the client went away before the answer (its signal fired). */
  aborted: boolean
}

type Answer = (req: Request, n: number, seen: Received) => Response | Promise<Response>

const received: Received[] = []
const answers = new Map<string, Answer>()
let receiver: ReturnType<typeof Bun.serve>
let origin: string
let sys: TestSystem

/**
 * A bare TCP server on an allowed origin: it closes every odd connection
 * without a word (a network error to the client) and answers the others.
 */
let dropper: Bun.TCPSocketListener<undefined>
let dropperConnections = 0
let dropperOrigin: string
const startDropper = () =>
  Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open: () => void dropperConnections++,
      data: (socket) => {
        if (dropperConnections % 2 === 1) return void socket.end()
        socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 11\r\nconnection: close\r\n\r\nsecond time')
      },
    },
  })

/** A path of its own for each test, answered by `answer` (n counts its requests from 1). */
let nextPath = 0
function route(answer: Answer): { path: string; url: string; seen: () => Received[] } {
  const path = `/hook/${++nextPath}`
  answers.set(path, answer)
  return { path, url: `${origin}${path}`, seen: () => received.filter((r) => r.path === path) }
}

/** Holds the request until the client goes away. */
const hang = (req: Request) => new Promise<Response>((resolve) => req.signal.addEventListener('abort', () => resolve(new Response('too late'))))

beforeAll(async () => {
  receiver = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    idleTimeout: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname
      const seen: Received = { path, method: req.method, headers: new Headers(req.headers), body: await req.text(), at: performance.now(), aborted: false }
      req.signal.addEventListener('abort', () => (seen.aborted = true))
      received.push(seen)
      const answer = answers.get(path)
      return answer ? answer(req, received.filter((r) => r.path === path).length, seen) : new Response('no such hook', { status: 404 })
    },
  })
  origin = `http://127.0.0.1:${receiver.port}`
  dropper = startDropper()
  dropperOrigin = `http://127.0.0.1:${dropper.port}`
  sys = await startSystem({
    workers: 1,
    env: { HTTP_TASK_ALLOWED_ORIGINS: `${origin},${dropperOrigin}`, HTTP_TASK_SIGNING_SECRET: secret, RETRY_BASE_MS: 20 },
  })
})
afterAll(async () => {
  await sys?.stop()
  receiver?.stop(true)
  dropper?.stop(true)
})

const getTask = async (id: number) => (await (await fetch(`${sys.http}/api/tasks/${id}/`)).json()) as any
const history = async (id: number) => ((await (await fetch(`${sys.http}/api/tasks/${id}/events/`)).json()) as any).results as any[]
const until = (id: number, status: string, timeoutMs?: number) =>
  eventually(async () => ((t) => t.status === status && t)(await getTask(id)), timeoutMs, 25, { what: `task ${id} ${status}` })

async function createHttpTask(payload: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<number> {
  const res = await postJson(`${sys.http}/api/tasks/`, { title: 'http', type: 'http', payload, ...extra })
  expect(res.status).toBe(201)
  return res.body.id
}

describe('http tasks: a 2xx completes the task with the response', () => {
  test('a JSON response is stored parsed, with the status; the request carries the payload, task id and attempt', async () => {
    const hook = route((_, n) => Response.json({ got: 'it', n }, { status: 201 }))
    const id = await createHttpTask({ url: hook.url, headers: { 'X-Tenant': 'acme' }, body: { invoice: 42, lines: ['a', 'b'] } })
    expect(await until(id, 'COMPLETED')).toMatchObject({ attempts: 1, result: { status: 201, body: { got: 'it', n: 1 } } })
    const [req] = hook.seen()
    expect(req!.method).toBe('POST')
    expect(JSON.parse(req!.body)).toEqual({ invoice: 42, lines: ['a', 'b'] })
    expect(req!.headers.get('content-type')).toBe('application/json')
    expect(req!.headers.get('x-tenant')).toBe('acme')
    expect(req!.headers.get('x-taskline-task-id')).toBe(String(id))
    expect(req!.headers.get('x-taskline-attempt')).toBe('1')
  })

  test('a text response is stored as text, and an empty one as null', async () => {
    const text = route(() => new Response('plain "words"', { headers: { 'content-type': 'text/plain' } }))
    const empty = route(() => new Response(null, { status: 204 }))
    const [a, b] = await Promise.all([createHttpTask({ url: text.url, method: 'PUT' }), createHttpTask({ url: empty.url, method: 'GET' })])
    expect((await until(a, 'COMPLETED')).result).toEqual({ status: 200, body: 'plain "words"' })
    expect((await until(b, 'COMPLETED')).result).toEqual({ status: 204, body: null })
    expect(text.seen()[0]).toMatchObject({ method: 'PUT', body: '' })
    expect(empty.seen()[0]!.method).toBe('GET')
    expect(empty.seen()[0]!.headers.get('content-type')).toBeNull()
  })

  test('a body over 64 KB is cut at 64 KB, marked truncated; an endless one is not read to its end', async () => {
    const big = route(() => new Response('x'.repeat(200_000)))
    let abandoned = false
    const endless = route(
      () =>
        new Response(
          new ReadableStream({
            pull(c) {
              c.enqueue(new Uint8Array(16_384).fill(121))
            },
            cancel() {
              abandoned = true
            },
          }),
          { headers: { 'content-type': 'application/json' } },
        ),
    )
    const [a, b] = await Promise.all([createHttpTask({ url: big.url }), createHttpTask({ url: endless.url })])
    const bigResult = (await until(a, 'COMPLETED')).result
    expect(bigResult).toEqual({ status: 200, body: 'x'.repeat(64 * 1024), truncated: true })
    const endlessResult = (await until(b, 'COMPLETED')).result
    expect(endlessResult).toMatchObject({ status: 200, truncated: true })
    expect(endlessResult.body).toBe('y'.repeat(64 * 1024))
    await eventually(async () => abandoned, 5000, 25, { what: 'the receiver to see the endless body abandoned' })
  })
})

describe('http tasks: failures', () => {
  test('a 500 is retried with backoff, and the next attempt completes; the history shows the failed one', async () => {
    const hook = route((_, n) => (n === 1 ? new Response('boom', { status: 500 }) : Response.json({ ok: true })))
    const id = await createHttpTask({ url: hook.url })
    expect(await until(id, 'COMPLETED')).toMatchObject({ attempts: 2, result: { status: 200, body: { ok: true } } })
    const events = await history(id)
    expect(events.map((e) => e.status)).toEqual(['PENDING', 'PROCESSING', 'PENDING', 'PROCESSING', 'COMPLETED'])
    expect(events[2].detail).toMatchObject({ error: 'HTTP 500: boom', attempt: 1 })
    expect(hook.seen().map((r) => r.headers.get('x-taskline-attempt'))).toEqual(['1', '2'])
  })

  test('a 400 fails the task at once, whatever max_attempts allows, with the status and the start of the body', async () => {
    const reason = `bad invoice: ${'z'.repeat(300)}`
    const hook = route(() => new Response(reason, { status: 400 }))
    const id = await createHttpTask({ url: hook.url }, { max_attempts: 3 })
    const failed = await until(id, 'FAILED')
    expect(failed).toMatchObject({ attempts: 1, error: `HTTP 400: ${reason.slice(0, 200)}` })
    expect((await history(id)).map((e) => e.status)).toEqual(['PENDING', 'PROCESSING', 'FAILED'])
    expect(hook.seen()).toHaveLength(1)
  })

  test('Retry-After on a 429 is honoured: the retry waits at least that long', async () => {
    const hook = route((_, n) => (n === 1 ? new Response('slow down', { status: 429, headers: { 'retry-after': '1' } }) : new Response('ok')))
    const id = await createHttpTask({ url: hook.url })
    await until(id, 'COMPLETED')
    const retry = (await history(id))[2]
    expect(retry).toMatchObject({ status: 'PENDING', detail: { error: 'HTTP 429: slow down' } })
    // The backoff alone (RETRY_BASE_MS 20) would be at most 20 ms.
    expect(retry.detail.retry_in_ms).toBeGreaterThanOrEqual(1000)
    const [first, second] = hook.seen()
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(1000)
  })

  test("a request past the payload's timeout_ms is abandoned and retried as a timeout", async () => {
    const hook = route((req, n) => (n === 1 ? hang(req) : new Response('fast now')))
    const id = await createHttpTask({ url: hook.url, timeout_ms: 200 })
    expect(await until(id, 'COMPLETED')).toMatchObject({ attempts: 2, result: { body: 'fast now' } })
    expect((await history(id))[2].detail).toMatchObject({ error: 'request timed out after 200 ms', attempt: 1 })
    expect(hook.seen()[0]!.aborted).toBe(true)
  })

  test("the task's own timeout_ms aborts the request too; with no attempts left the task fails as timed out", async () => {
    const hook = route(hang)
    const id = await createHttpTask({ url: hook.url }, { timeout_ms: 300, max_attempts: 1 })
    expect(await until(id, 'FAILED')).toMatchObject({ attempts: 1, error: 'timed out after 300 ms' })
    await eventually(async () => hook.seen()[0]?.aborted, 2000, 25, { what: 'the receiver to see the request aborted' })
  })

  test('a dropped connection is retried as a network error', async () => {
    const before = dropperConnections
    const id = await createHttpTask({ url: `${dropperOrigin}/hook` })
    const done = await until(id, 'COMPLETED')
    expect(done).toMatchObject({ attempts: 2, result: { status: 200, body: 'second time' } })
    expect((await history(id))[2].detail.error).toStartWith('request failed: ')
    expect(dropperConnections - before).toBe(2)
  })

  test('a redirect is not followed: the task fails at once naming the status', async () => {
    const landing = route(() => new Response('landed'))
    const hook = route(() => new Response(null, { status: 302, headers: { location: landing.path } }))
    const id = await createHttpTask({ url: hook.url }, { max_attempts: 3 })
    expect(await until(id, 'FAILED')).toMatchObject({ attempts: 1, error: `HTTP 302: redirects are not followed (to ${landing.path})` })
    expect(landing.seen()).toHaveLength(0)
  })
})

describe('http tasks: cancel', () => {
  test('cancelling a task aborts its request in flight', async () => {
    const hook = route(hang)
    const id = await createHttpTask({ url: hook.url })
    await eventually(async () => hook.seen().length === 1, 10_000, 25, { what: 'the request to arrive' })
    const res = await postJson(`${sys.http}/api/tasks/${id}/cancel/`, {})
    expect(res.status).toBe(200)
    await eventually(async () => hook.seen()[0]!.aborted, 5000, 25, { what: 'the receiver to see the request aborted' })
    await eventually(async () => !sys.workers[0]!.runner.running.has(id), 2000, 25, { what: 'the worker to free the slot' })
    expect(await getTask(id)).toMatchObject({ status: 'CANCELLED', attempts: 1 })
    expect((await history(id)).at(-1).status).toBe('CANCELLED')
  })
})

describe('http tasks: the allowed origins', () => {
  test('a URL whose origin is not on the list is refused at POST, naming payload.url', async () => {
    const port = receiver.port
    for (const url of [`http://localhost:${port}/hook`, `https://127.0.0.1:${port}/hook`, `http://127.0.0.1:${port}@evil.example/hook`]) {
      const res = await postJson(`${sys.http}/api/tasks/`, { title: 'elsewhere', type: 'http', payload: { url } })
      expect(res.status).toBe(400)
      expect(res.body.error.details[0]).toMatchObject({ path: 'payload.url' })
      expect(res.body.error.message).toContain('is not on HTTP_TASK_ALLOWED_ORIGINS')
    }
    const ftp = await postJson(`${sys.http}/api/tasks/`, { title: 'ftp', type: 'http', payload: { url: `ftp://127.0.0.1:${port}/` } })
    expect(ftp.status).toBe(400)
    expect(ftp.body.error.details[0]).toEqual({ path: 'payload.url', message: 'must be an http:// or https:// URL' })
  })

  test('an empty list disables the type: every http task is a 400 saying so', async () => {
    const closed = await startSystem({ workers: 0 })
    try {
      for (const payload of [{ url: `${origin}/hook` }, {}]) {
        const res = await postJson(`${closed.http}/api/tasks/`, { title: 'off', type: 'http', payload })
        expect(res.status).toBe(400)
        expect(res.body.error.details[0].path).toBe('payload.url')
        expect(res.body.error.message).toContain('http task type is disabled')
        expect(res.body.error.message).toContain('HTTP_TASK_ALLOWED_ORIGINS')
      }
    } finally {
      await closed.stop()
    }
  })

  test('a worker checks the origin against its own list before the attempt: not on it, the task fails without a request', async () => {
    const hook = route(() => new Response('should not be called'))
    const gate = await startSystem({ workers: 0, env: { HTTP_TASK_ALLOWED_ORIGINS: origin } })
    try {
      const res = await postJson(`${gate.http}/api/tasks/`, { title: 'moved', type: 'http', payload: { url: hook.url }, max_attempts: 3 })
      expect(res.status).toBe(201)
      await gate.addWorker({ HTTP_TASK_ALLOWED_ORIGINS: 'http://127.0.0.1:9' })
      const failed = await eventually(async () =>
        ((t: any) => t.status === 'FAILED' && t)(await (await fetch(`${gate.http}/api/tasks/${res.body.id}/`)).json()),
      )
      expect(failed.attempts).toBe(1)
      expect(failed.error).toContain(`origin ${origin} is not on HTTP_TASK_ALLOWED_ORIGINS`)
      expect(hook.seen()).toHaveLength(0)
    } finally {
      await gate.stop()
    }
  })
})

describe('http tasks: signatures', () => {
  test('every request is signed, and the documented verifier accepts it and nothing altered', async () => {
    const hook = route(() => new Response('ok'))
    const [withBody, without] = await Promise.all([
      createHttpTask({ url: hook.url, body: { amount: '10.00', note: 'naïve ✓' } }),
      createHttpTask({ url: hook.url, method: 'DELETE' }),
    ])
    await Promise.all([until(withBody, 'COMPLETED'), until(without, 'COMPLETED')])
    const seen = hook.seen()
    expect(seen).toHaveLength(2)
    for (const req of seen) {
      const header = req.headers.get('x-taskline-signature')!
      expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/)
      expect(verifyTasklineSignature(header, req.body, secret)).toBe(true)
      expect(verifyTasklineSignature(header, `${req.body} `, secret)).toBe(false)
      expect(verifyTasklineSignature(header, req.body, `${secret}x`)).toBe(false)
      // A signature replayed an hour later is refused.
      expect(verifyTasklineSignature(header, req.body, secret, 300, Date.now() / 1000 + 3600)).toBe(false)
    }
    const bodies = seen.map((r) => r.body).sort()
    expect(bodies[0]).toBe('')
    expect(JSON.parse(bodies[1]!)).toEqual({ amount: '10.00', note: 'naïve ✓' })
    expect(verifyTasklineSignature('', '', secret)).toBe(false)
    expect(verifyTasklineSignature('t=abc,v1=00', '', secret)).toBe(false)
  })

  test('docs/http-tasks.md holds this file’s verifier unchanged', async () => {
    const source = await Bun.file(import.meta.path).text()
    const verifier = source.slice(source.indexOf('// verifier:start\n') + '// verifier:start\n'.length, source.indexOf('// verifier:end'))
    expect(verifier).toStartWith('export function verifyTasklineSignature(')
    const doc = await Bun.file(new URL('../docs/http-tasks.md', import.meta.url)).text()
    expect(doc).toContain(`import { createHmac, timingSafeEqual } from 'node:crypto'\n\n${verifier}`)
  })
})
