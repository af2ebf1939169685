import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createHmac } from 'node:crypto'
import { failureKindOf, type HandlerContext, type HttpTaskSettings, PermanentError, RetryableError } from '../src/handlers/handler'
import { MAX_RETRY_AFTER_MS, retryAfterMs, runHttpTask, signature } from '../src/handlers/http.handler'
import { httpTask } from '../src/handlers/http.task'

/**
 * The http handler's run code called directly, against a local server that
 * answers each request with the status, headers and body its query names.
 */

let server: ReturnType<typeof Bun.serve>
let origin: string
/** What the server got, copied: Bun may reuse a Request once its answer is sent. */
const requests: { method: string; headers: Headers; body: string }[] = []

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      requests.push({ method: req.method, headers: new Headers(req.headers), body: await req.text() })
      const url = new URL(req.url)
      if (url.pathname === '/euro') return new Response(`x${'€'.repeat(30_000)}`)
      const q = url.searchParams
      const headers = new Headers(q.getAll('h').map((h) => h.split(': ', 2) as [string, string]))
      return new Response(q.get('body') ?? '', { status: Number(q.get('status') ?? 200), headers })
    },
  })
  origin = `http://127.0.0.1:${server.port}`
})
afterAll(() => server.stop(true))

const noop = () => {}
function ctxWith(http: Partial<HttpTaskSettings> = {}, signal = new AbortController().signal): HandlerContext & { http: HttpTaskSettings } {
  return {
    taskId: 7,
    attempt: 2,
    signal,
    progress: async () => {},
    heartbeat: async () => {},
    logger: { debug: noop, info: noop, warn: noop, error: noop },
    http: { allowedOrigins: [origin], ...http },
  }
}

/** Runs one request through the payload schema, as the worker does. */
const run = (payload: Record<string, unknown>, ctx = ctxWith()) => runHttpTask(httpTask(ctx.http).payload.parse(payload), ctx, ctx.http)

const answer = (status: number, body = '', headers: string[] = []) => {
  const q = new URLSearchParams({ status: String(status), body })
  for (const h of headers) q.append('h', h)
  return `${origin}/?${q}`
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (e) {
    return e as Error
  }
  throw new Error('expected the run to fail')
}

describe('http handler: what each status comes to', () => {
  test('2xx completes', async () => {
    for (const status of [200, 201, 202, 204, 299]) expect((await run({ url: answer(status) })).status).toBe(status)
  })

  test('408, 429 and 5xx are retryable; other 4xx and 3xx are permanent', async () => {
    for (const status of [408, 429, 500, 502, 503, 504, 599]) {
      const e = await failure(run({ url: answer(status, 'nope') }))
      expect(e).toBeInstanceOf(RetryableError)
      expect(e.message).toBe(`HTTP ${status}: nope`)
    }
    for (const status of [400, 401, 403, 404, 409, 410, 422]) {
      const e = await failure(run({ url: answer(status, 'nope') }))
      expect(e).toBeInstanceOf(PermanentError)
      expect(failureKindOf(e)).toEqual({ permanent: true })
    }
    for (const status of [301, 302, 303, 307, 308]) {
      const e = await failure(run({ url: answer(status, '', [`location: ${origin}/elsewhere`]) }))
      expect(e).toBeInstanceOf(PermanentError)
      expect(e.message).toBe(`HTTP ${status}: redirects are not followed (to ${origin}/elsewhere)`)
    }
  })

  test('an error keeps the first 200 characters of its body', async () => {
    const e = await failure(run({ url: answer(503, 'é'.repeat(1000)) }))
    expect(e.message).toBe(`HTTP 503: ${'é'.repeat(200)}`)
  })

  test('Retry-After reaches the failure policy as retryAfterMs', async () => {
    expect(failureKindOf(await failure(run({ url: answer(503, '', ['retry-after: 7']) })))).toEqual({ permanent: false, retryAfterMs: 7000 })
    expect(failureKindOf(await failure(run({ url: answer(500) })))).toEqual({ permanent: false })
  })
})

describe('http handler: the result body', () => {
  test('JSON when the content type says so and it parses; text otherwise', async () => {
    const json = (ct: string, body: string) => answer(200, body, [`content-type: ${ct}`])
    expect((await run({ url: json('application/json; charset=utf-8', '{"a":[1]}') })).body).toEqual({ a: [1] })
    expect((await run({ url: json('application/problem+json', '{"title":"x"}') })).body).toEqual({ title: 'x' })
    expect((await run({ url: json('text/plain', '{"a":1}') })).body).toBe('{"a":1}')
    expect((await run({ url: json('application/json', '{not json') })).body).toBe('{not json')
    expect((await run({ url: json('application/jsonx', '1') })).body).toBe('1')
  })

  test('what Postgres cannot store (NUL, lone surrogates) is kept as text with NUL replaced', async () => {
    const nul = await run({ url: answer(200, '{"a":"x\\u0000y"}', ['content-type: application/json']) })
    expect(nul.body).toBe('{"a":"x\\u0000y"}')
    const surrogate = await run({ url: answer(200, '["\\ud800"]', ['content-type: application/json']) })
    expect(surrogate.body).toBe('["\\ud800"]')
    expect((await run({ url: answer(200, 'a\0b') })).body).toBe('a\uFFFDb')
  })

  test('a cut never ends on half a character', async () => {
    const result = await run({ url: `${origin}/euro` })
    expect(result.truncated).toBe(true)
    // 1 + 3n bytes: 64 KB ends one byte into a euro sign, which is dropped, not turned into U+FFFD.
    expect(result.body).toBe(`x${'€'.repeat(Math.floor((64 * 1024 - 1) / 3))}`)
  })
})

describe('http handler: the request', () => {
  test('headers: the payload’s, JSON content type when there is a body (unless set), task id, attempt, signature', async () => {
    const secret = 'a-secret-of-some-length'
    await run({ url: `${origin}/a`, body: { x: 1 }, headers: { 'X-One': '1' } }, ctxWith({ signingSecret: secret }))
    const req = requests.at(-1)!
    expect(req.headers.get('content-type')).toBe('application/json')
    expect(req.headers.get('x-one')).toBe('1')
    expect(req.headers.get('x-taskline-task-id')).toBe('7')
    expect(req.headers.get('x-taskline-attempt')).toBe('2')
    const [t, v1] = req.headers.get('x-taskline-signature')!.split(',')
    expect(v1).toBe(
      `v1=${createHmac('sha256', secret)
        .update(`${t!.slice(2)}.${req.body}`)
        .digest('hex')}`,
    )

    await run({ url: `${origin}/b`, method: 'PATCH', body: [1], headers: { 'Content-Type': 'application/merge-patch+json' } })
    expect(requests.at(-1)!.headers.get('content-type')).toBe('application/merge-patch+json')
    expect(requests.at(-1)!.headers.get('x-taskline-signature')).toBeNull()

    await run({ url: `${origin}/c`, method: 'HEAD' })
    expect(requests.at(-1)!.method).toBe('HEAD')
    expect(requests.at(-1)!.headers.get('content-type')).toBeNull()
  })

  test('signature(): t=<seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">', () => {
    const mac = createHmac('sha256', 'k'.repeat(16)).update('1700000000.{"a":1}').digest('hex')
    expect(signature('k'.repeat(16), '{"a":1}', 1_700_000_000_999)).toBe(`t=1700000000,v1=${mac}`)
  })

  test('the origin is checked again before the request: one no longer allowed fails at once, and nothing is sent', async () => {
    const before = requests.length
    const payload = httpTask({ allowedOrigins: [origin] }).payload.parse({ url: `${origin}/moved` })
    const moved = await failure(runHttpTask(payload, ctxWith(), { allowedOrigins: ['https://elsewhere.example'] }))
    expect(moved).toBeInstanceOf(PermanentError)
    expect(moved.message).toBe(`url: origin ${origin} is not on HTTP_TASK_ALLOWED_ORIGINS`)
    const off = await failure(runHttpTask(payload, ctxWith(), { allowedOrigins: [] }))
    expect(off).toBeInstanceOf(PermanentError)
    expect(off.message).toContain('disabled')
    expect(requests.length).toBe(before)
  })

  test('an aborted run rethrows its signal’s reason for the worker to read', async () => {
    const controller = new AbortController()
    const reason = new Error('cancelled by the test')
    const pending = failure(run({ url: `${origin}/slow` }, ctxWith({}, controller.signal)))
    controller.abort(reason)
    expect(await pending).toBe(reason)
  })
})

describe('retryAfterMs', () => {
  const now = Date.parse('2030-01-01T00:00:00Z')
  test('delta-seconds and HTTP-dates, never negative, capped at an hour', () => {
    expect(retryAfterMs('0', now)).toBe(0)
    expect(retryAfterMs(' 120 ', now)).toBe(120_000)
    expect(retryAfterMs('Tue, 01 Jan 2030 00:00:30 GMT', now)).toBe(30_000)
    expect(retryAfterMs('Mon, 31 Dec 2029 23:59:00 GMT', now)).toBe(0)
    expect(retryAfterMs('86400', now)).toBe(MAX_RETRY_AFTER_MS)
    expect(MAX_RETRY_AFTER_MS).toBe(3_600_000)
  })

  test('absent or unreadable: undefined, the backoff decides', () => {
    for (const v of [null, '', '  ', 'soon', '-5', '1.5e3']) expect(retryAfterMs(v, now)).toBeUndefined()
  })
})
