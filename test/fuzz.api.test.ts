import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { createToken } from '../src/domain/tokens/token.service'
import { rawRequest, type RawResponse } from './helpers/raw-http'
import { connect } from './helpers/ws-client'
import { postJson, startSystem, type TestSystem } from './helpers/system'

/**
 * Random requests and socket frames against a running API. Small by default so
 * it fits in `bun test`; for a long run: FUZZ_RUNS=50000 bun test test/fuzz.api.test.ts
 */
const runs = Number(process.env.FUZZ_RUNS ?? 1500)

let sys: TestSystem
let alice: string
let bob: string
const bobsTasks: number[] = []
beforeAll(async () => {
  // No worker: another owner's rows must stay exactly as they were, so nothing may run them.
  sys = await startSystem({ workers: 0, env: { AUTH: 'required', MAX_BODY_BYTES: 64 * 1024 } })
  alice = (await createToken(sys.db, 'fuzz-alice', false)).token
  bob = (await createToken(sys.db, 'fuzz-bob', false)).token
  for (let i = 0; i < 3; i++) bobsTasks.push((await postJson(`${sys.http}/api/tasks/`, { title: `bob ${i}` }, { authorization: `Bearer ${bob}` })).body.id)
})
afterAll(() => sys.stop())

const bobsRows = () => sys.db.selectFrom('tasks').selectAll().where('id', 'in', bobsTasks).orderBy('id').execute()

const weirdString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.constantFrom('', ' ', '\u0000', '%00', '%ff', '..', '../..', '\ud800', '﻿', 'null', 'NaN', '1e309', '-0', '9'.repeat(40), "' OR 1=1 --", '<script>'),
  fc.string({ maxLength: 5000 }),
)
// Lone surrogates cannot be URI-encoded; send the bytes a broken client would.
const enc = (s: string) => {
  try {
    return encodeURIComponent(s)
  } catch {
    return '%ED%A0%80'
  }
}
const idLike = fc.oneof(
  fc.integer({ min: -5, max: 1_000_000 }).map(String),
  fc.constantFrom(...['1', '2', '3'].map(String)),
  fc.bigInt().map(String),
  fc.double().map(String),
  weirdString.map(enc),
)
const path = fc.oneof(
  fc.constantFrom('/api/tasks/', '/api/tasks', '/healthz', '/readyz', '/ws/tasks/', '/nope', '/api/', '/'),
  fc.tuple(idLike, fc.constantFrom('', '/', '/cancel/', '/retry', '/events/', '/x')).map(([id, tail]) => `/api/tasks/${id}${tail}`),
  fc.constantFrom(...[0, 1, 2].map((i) => `BOB${i}`)).map((k) => k), // placeholders for bob's ids, filled in below
  weirdString.map((s) => `/api/tasks/${enc(s)}`),
  // Names every plain object has: a lookup by a path segment must not find them.
  fc
    .tuple(
      fc.constantFrom('/docs/', '/api/tasks/', '/ws/tasks/', '/'),
      fc.constantFrom('__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', 'init.js'),
    )
    .map(([a, b]) => a + b),
)
const query = fc.dictionary(fc.constantFrom('status', 'limit', 'cursor', 'after', 'after_seq', 'token', 'x'), weirdString, { maxKeys: 3 })
const jsonBody = fc.oneof(
  fc.record(
    {
      title: weirdString,
      type: fc.option(weirdString),
      payload: fc.option(fc.jsonValue()),
      max_attempts: fc.option(fc.oneof(fc.integer(), fc.double(), weirdString)),
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue({ maxDepth: 30 }),
  fc.json(),
  fc.integer({ min: 1, max: 200 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
)
const rawBody = fc.oneof(
  jsonBody.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))),
  fc.uint8Array({ maxLength: 300 }), // invalid UTF-8 and binary garbage
  weirdString,
)
const request = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT', 'OPTIONS', 'HEAD'),
  path,
  query,
  body: fc.option(rawBody),
  contentType: fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/vnd.api+json',
    '',
  ),
  auth: fc.constantFrom('alice', 'alice', 'alice', 'bob-forged', 'garbage', 'none'),
  idempotencyKey: fc.option(weirdString),
})

/** What every answer promises: never a 5xx or a trace, and any error is JSON with a code. */
function expectWellFormed(method: string, status: number, contentType: string | null | undefined, text: string) {
  expect(status).toBeLessThan(500)
  expect(text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+|SELECT |tl_\d+_[A-Za-z0-9_-]{20,}/)
  if (status < 400 || method === 'HEAD') return
  expect(contentType ?? '').toStartWith('application/json')
  expect(typeof JSON.parse(text)?.error?.code).toBe('string')
}

// Header values a broken or hostile client sends; CR and LF are left out, since they would end the header line.
const headerValue = fc.oneof(
  fc.constantFrom(
    '',
    'null',
    'file://',
    'http://',
    '://',
    'http://[::1',
    'http://%',
    'https://evil.example',
    'http://127.0.0.1',
    'data:,',
    '*',
    '%00',
    'undefined',
    '__proto__',
  ),
  fc.string({ maxLength: 80 }).map((s) => s.replace(/[^\x20-\x7e\t]/g, '?')),
  fc.string({ maxLength: 2000 }).map((s) => s.replace(/[^\x20-\x7e]/g, 'x')),
)
const tokenLike = fc.oneof(
  fc.constantFrom('ALICE', 'ALICE', 'BOB-FORGED', 'tl_', 'tl_0001_x', 'tl_1_', 'tl__', `tl_99999999999999999999_${'a'.repeat(43)}`),
  headerValue,
)
const authorization = fc.oneof(
  tokenLike.map((t) => `Bearer ${t}`),
  fc.constantFrom('Bearer', 'Basic YTpi', 'bearer  ALICE'),
  headerValue,
)
const protocolOffer = fc.array(fc.oneof(fc.constantFrom('taskline'), tokenLike), { maxLength: 4 }).map((a) => a.join(', '))
/** Every header the issue names, with the values each may take. */
const headerArbs = {
  origin: headerValue,
  host: fc.oneof(
    fc.constantFrom('THIS', 'THIS', 'evil.example', '127.0.0.1', 'localhost:1', '[::1]', 'a:b:c'),
    headerValue.filter((v) => v.trim() !== ''),
  ),
  authorization,
  'sec-websocket-protocol': protocolOffer,
  'sec-websocket-key': fc.oneof(fc.constantFrom('dGhlIHNhbXBsZSBub25jZQ=='), headerValue),
  'sec-websocket-version': fc.oneof(fc.constantFrom('13', '8', '0', '-1'), headerValue),
  'sec-websocket-extensions': fc.oneof(fc.constantFrom('permessage-deflate; client_max_window_bits', 'x; y=z'), headerValue),
  'x-forwarded-for': fc.oneof(fc.constantFrom('1.2.3.4', '::1, 10.0.0.1', 'unknown', '999.999.999.999'), headerValue),
  'x-forwarded-proto': fc.oneof(fc.constantFrom('https', 'http', 'gopher'), headerValue),
  'x-forwarded-host': fc.oneof(fc.constantFrom('evil.example', 'a b'), headerValue),
  'idempotency-key': headerValue,
  'x-request-id': headerValue,
}
type HeaderName = keyof typeof headerArbs
/** Any of them, each present or not. */
const headerSet = fc.record(headerArbs, { requiredKeys: [] })
/** At most three of them: the rest stay valid, so a request gets past the first check to the later ones. */
const fewHeaders = fc
  .uniqueArray(fc.constantFrom(...(Object.keys(headerArbs) as HeaderName[])), { maxLength: 3 })
  .chain((names) => fc.record(Object.fromEntries(names.map((n) => [n, headerArbs[n]])) as Record<HeaderName, fc.Arbitrary<string>>))

describe('fuzzing the running API', () => {
  test(`${runs} random requests: no 5xx, no crash, no change to another owner's tasks`, async () => {
    const before = await bobsRows()
    let tried = 0
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        tried++
        const p = r.path.replace(/^BOB(\d)$/, (_, i) => `/api/tasks/${bobsTasks[Number(i)]}/`)
        const qs = new URLSearchParams(r.query).toString()
        const headers: Record<string, string> = {}
        if (r.contentType) headers['content-type'] = r.contentType
        if (r.auth === 'alice') headers.authorization = `Bearer ${alice}`
        if (r.auth === 'bob-forged') headers.authorization = `Bearer ${bob.slice(0, -2)}xx`
        if (r.auth === 'garbage') headers.authorization = 'Bearer \u00ff\u00fe'.replace(/[^\x20-\x7e]/g, '?')
        if (r.idempotencyKey !== null) headers['idempotency-key'] = r.idempotencyKey.replace(/[^\x20-\x7e]/g, '?').slice(0, 300)
        const body = r.method === 'GET' || r.method === 'HEAD' || r.body === null ? undefined : r.body
        let res: Response
        try {
          res = await fetch(`${sys.http}${p}${qs ? `?${qs}` : ''}`, { method: r.method, headers, body })
        } catch (e) {
          // fetch itself refuses some inputs (invalid URL or header); that is the client, not the server
          if (String(e).match(/invalid|header/i)) return true
          throw e
        }
        expectWellFormed(r.method, res.status, res.headers.get('content-type'), await res.text())
        return true
      }),
      { numRuns: runs, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) },
    )
    expect(await bobsRows()).toEqual(before)
    expect((await fetch(`${sys.http}/healthz`)).status).toBe(200)
    console.log(`fuzz: ${tried} random requests, 0 server errors, other owner's ${bobsTasks.length} tasks unchanged`)
  }, 300_000)

  /** Sends one raw request with the fuzzed headers; placeholders become the real host and tokens. */
  function sendRaw(method: string, target: string, fuzzed: Record<string, string>, base: [string, string][] = []): Promise<RawResponse> {
    const fill = (v: string) =>
      v
        .replaceAll('THIS', new URL(sys.http).host)
        .replaceAll('BOB-FORGED', `${bob.slice(0, -2)}xx`)
        .replaceAll('ALICE', alice)
    const headers = new Map<string, string>([['host', 'THIS'], ...base])
    for (const [k, v] of Object.entries(fuzzed)) headers.set(k, v)
    const body = method === 'POST' ? '{"title":"fuzzed headers"}' : undefined
    if (body) headers.set('content-type', 'application/json')
    return rawRequest(sys.http, { method, target, headers: [...headers].map(([k, v]) => [k, fill(v)]), body })
  }
  const fillPath = (p: string) => p.replace(/^BOB(\d)$/, (_, i) => `/api/tasks/${bobsTasks[Number(i)]}/`)

  test(`${Math.ceil(runs / 2)} requests with random headers: no 5xx, every error JSON with a code`, async () => {
    const before = await bobsRows()
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'POST', 'DELETE', 'HEAD', 'OPTIONS'), path, fc.oneof(headerSet, fewHeaders), async (method, p, headers) => {
        const res = await sendRaw(method, fillPath(p), headers)
        expectWellFormed(method, res.status, res.headers['content-type'], res.body)
      }),
      { numRuns: Math.ceil(runs / 2), seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) },
    )
    expect(await bobsRows()).toEqual(before)
    expect((await fetch(`${sys.http}/healthz`)).status).toBe(200)
  }, 300_000)

  test(`${Math.ceil(runs / 3)} WebSocket upgrades with random headers: a 101 or a JSON 4xx, never a 5xx`, async () => {
    const target = fc.oneof(
      fc.constantFrom('/ws/tasks/', '/ws/tasks', '/ws/tasks/?token=ALICE', '/ws/tasks/?after=0', '/ws/tasks/?after=-1', '/ws/', '/ws/tasks/1/?after_seq=x'),
      fc.tuple(idLike, fc.constantFrom('', '/', '/?after_seq=0', '/?token=ALICE')).map(([id, q]) => `/ws/tasks/${id}${q}`),
      fc.constantFrom(0, 1, 2).map((i) => `/ws/tasks/${bobsTasks[i]}/`),
    )
    const upgrade: [string, string][] = [
      ['upgrade', 'websocket'],
      ['connection', 'Upgrade'],
      ['sec-websocket-key', 'dGhlIHNhbXBsZSBub25jZQ=='],
      ['sec-websocket-version', '13'],
      ['authorization', 'Bearer ALICE'],
    ]
    let upgraded = 0
    await fc.assert(
      fc.asyncProperty(target, fewHeaders, async (t, headers) => {
        const res = await sendRaw('GET', t.replaceAll('ALICE', alice), headers, upgrade)
        if (res.status === 101) upgraded++
        expectWellFormed('GET', res.status, res.headers['content-type'], res.body)
      }),
      { numRuns: Math.ceil(runs / 3), seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) },
    )
    expect((await fetch(`${sys.http}/healthz`)).status).toBe(200)
    console.log(`fuzz: ${Math.ceil(runs / 3)} random upgrades, ${upgraded} opened a socket, 0 server errors`)
  }, 300_000)

  test('the cases the fuzzer found: object-prototype names under /docs and an Origin that is no URL', async () => {
    for (const name of ['__proto__', 'constructor', 'toString']) {
      const res = await fetch(`${sys.http}/docs/${name}`)
      expect(res.status).toBe(404)
      expect(((await res.json()) as any).error.code).toBe('not_found')
    }
    for (const origin of ['null', 'http://[::1', 'not a url']) {
      const res = await sendRaw('GET', '/ws/tasks/', { origin }, [
        ['upgrade', 'websocket'],
        ['connection', 'Upgrade'],
        ['sec-websocket-key', 'dGhlIHNhbXBsZSBub25jZQ=='],
        ['sec-websocket-version', '13'],
        ['authorization', 'Bearer ALICE'],
      ])
      expect({ origin, status: res.status, code: JSON.parse(res.body).error.code }).toEqual({ origin, status: 403, code: 'forbidden_origin' })
    }
  })

  test('random client frames never crash the API', async () => {
    const frames = fc.sample(
      fc.oneof(
        weirdString,
        fc.uint8Array({ maxLength: 2000 }),
        fc.jsonValue().map((v) => JSON.stringify(v)),
      ),
      Math.max(50, Math.floor(runs / 10)),
    )
    for (const frame of frames) {
      const ws = await connect(`${sys.ws}/ws/tasks/?token=${alice}`)
      ws.ws.send(frame)
      ws.ws.send('ping')
      await Promise.race([ws.closed, ws.waitFor((m) => m.kind === 'pong', 2000).catch(() => null)])
      ws.close()
    }
    expect((await fetch(`${sys.http}/healthz`)).status).toBe(200)
    console.log(`fuzz: ${frames.length} random socket frames, API still healthy`)
  }, 120_000)
})
