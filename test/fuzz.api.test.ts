import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { createToken } from '../src/domain/tokens/token.service'
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
let bobsTasks: number[] = []
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
)
const query = fc.dictionary(fc.constantFrom('status', 'limit', 'cursor', 'after', 'after_seq', 'token', 'x'), weirdString, { maxKeys: 3 })
const jsonBody = fc.oneof(
  fc.record({ title: weirdString, type: fc.option(weirdString), payload: fc.option(fc.jsonValue()), max_attempts: fc.option(fc.oneof(fc.integer(), fc.double(), weirdString)) }, { requiredKeys: [] }),
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
  contentType: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/vnd.api+json', ''),
  auth: fc.constantFrom('alice', 'alice', 'alice', 'bob-forged', 'garbage', 'none'),
  idempotencyKey: fc.option(weirdString),
})

describe('fuzzing the running API', () => {
  test(`${runs} random requests: no 5xx, no crash, no change to another owner's tasks`, async () => {
    const before = await bobsRows()
    let tried = 0
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        tried++
        let p = r.path.replace(/^BOB(\d)$/, (_, i) => `/api/tasks/${bobsTasks[Number(i)]}/`)
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
        const text = await res.text()
        expect(res.status).toBeLessThan(500)
        expect(text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+|SELECT |tl_\d+_[A-Za-z0-9_-]{20,}/)
        return true
      }),
      { numRuns: runs, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) },
    )
    expect(await bobsRows()).toEqual(before)
    expect((await fetch(`${sys.http}/healthz`)).status).toBe(200)
    console.log(`fuzz: ${tried} random requests, 0 server errors, other owner's ${bobsTasks.length} tasks unchanged`)
  }, 300_000)

  test('random client frames never crash the API', async () => {
    const frames = fc.sample(fc.oneof(weirdString, fc.uint8Array({ maxLength: 2000 }), fc.jsonValue().map((v) => JSON.stringify(v))), Math.max(50, Math.floor(runs / 10)))
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
