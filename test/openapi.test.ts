import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Validator } from '@seriousme/openapi-schema-validator'
import { z } from 'zod'
import { createApp } from '../src/api/app'
import { ApiError, createClient, followTask, type TaskMessage, type TaskStatus } from '../src/client'
import { createTaskSchema, taskSchema } from '../src/domain/tasks/task'
import { createLogger } from '../src/infra/logger'
import { streamKeys } from '../src/infra/stream-keys'
import { registerWorkerTypes } from '../src/domain/task-types/task-type.repository'
import { payloadJsonSchema } from '../src/domain/task-types/task-type'
import { eventually, startSystem, type TestSystem } from './helpers/system'
import { startWsRelay } from './helpers/ws-relay'

/**
 * /openapi.json, /docs and the typed client, against the real system (AUTH
 * off, one API, one worker). The document is checked by an independent
 * OpenAPI 3.1 validator and against the routes the app actually serves.
 */

let sys: TestSystem
let doc: any
beforeAll(async () => {
  sys = await startSystem({ workers: 1, env: { DEMO_WORK_MS: 50 } })
  const res = await fetch(`${sys.http}/openapi.json`)
  expect(res.status).toBe(200)
  doc = await res.json()
})
afterAll(() => sys.stop())

/** "/api/tasks/:id/", "/api/tasks/{id}" and "/:id{[0-9]+}" (a pattern-restricted parameter) name the same route. */
const normalise = (path: string) => path.replace(/:(\w+)(\{[^/]*\})?/g, '{$1}').replace(/\/+$/, '') || '/'
const documented = () => new Map(Object.entries(doc.paths).map(([path, item]) => [normalise(path), item as Record<string, any>]))
const operations = () =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item as Record<string, any>).map(([method, op]) => ({ path, method, op: op as Record<string, any> })),
  )

describe('GET /openapi.json', () => {
  test('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator()
    const result = await validator.validate(structuredClone(doc))
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    expect(validator.version).toBe('3.1')
  })

  test("describes each task type's payload, tied to its type in POST /api/tasks/, registered ones included", async () => {
    const schema = payloadJsonSchema(z.object({ to: z.email(), cc: z.array(z.email()).optional() }))
    await registerWorkerTypes(sys.db, 'openapi-test', [{ name: 'mail:send', payloadSchema: schema, timeoutMs: null }])
    const now = (await (await fetch(`${sys.http}/openapi.json`)).json()) as any
    const validator = new Validator()
    expect((await validator.validate(structuredClone(now))).errors ?? []).toEqual([])
    expect(now.components.schemas['TaskPayload.mail_send']).toMatchObject({
      type: 'object',
      properties: { to: { type: 'string', format: 'email' } },
      required: ['to'],
    })
    expect(now.components.schemas['TaskPayload.demo'].properties).toHaveProperty('duration_ms')
    const body = now.paths['/api/tasks/'].post.requestBody.content['application/json'].schema
    expect(body.allOf).toContainEqual({
      if: { properties: { type: { const: 'mail:send' } }, required: ['type'] },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then
      then: { properties: { payload: { $ref: '#/components/schemas/TaskPayload.mail_send' } } },
    })
    // demo is the default type: its condition holds for a body with no type too.
    expect(body.allOf).toContainEqual({
      if: { properties: { type: { const: 'demo' } } },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then
      then: { properties: { payload: { $ref: '#/components/schemas/TaskPayload.demo' } } },
    })
    expect(body.properties.type.examples).toEqual(expect.arrayContaining(['demo', 'http', 'mail:send']))
  })

  test('documents every route the app serves (method and path)', () => {
    const paths = documented()
    const served = sys.apis[0]!.app.routes.filter((r) => !r.path.includes('*') && r.method !== 'ALL')
    expect(served.length).toBeGreaterThan(10)
    const missing = served.filter((r) => !paths.get(normalise(r.path))?.[r.method.toLowerCase()]).map((r) => `${r.method} ${r.path}`)
    expect(missing).toEqual([])
    // and nothing documented that is not served
    const servedKeys = new Set(served.map((r) => `${r.method.toLowerCase()} ${normalise(r.path)}`))
    expect(operations().filter(({ path, method }) => !servedKeys.has(`${method} ${normalise(path)}`))).toEqual([])
  })

  test('spells /api and /ws paths with the trailing slash the README uses, WebSockets included', () => {
    for (const path of [
      '/api/tasks/',
      '/api/tasks/{id}/',
      '/api/tasks/{id}/cancel/',
      '/api/tasks/{id}/retry/',
      '/api/tasks/{id}/events/',
      '/ws/tasks/',
      '/ws/tasks/{id}/',
      '/healthz',
      '/readyz',
    ]) {
      expect(doc.paths).toHaveProperty([path])
    }
  })

  test('every 4xx and 5xx response references the one Error schema', () => {
    expect(doc.components.schemas.Error.properties.error.required).toEqual(['code', 'message'])
    const seen = new Set<string>()
    for (const { path, method, op } of operations()) {
      for (const [status, response] of Object.entries(op.responses as Record<string, any>)) {
        if (Number(status) < 400) continue
        seen.add(status)
        expect({ path, method, status, schema: response.content?.['application/json']?.schema }).toEqual({
          path,
          method,
          status,
          schema: { $ref: '#/components/schemas/Error' },
        })
      }
    }
    for (const status of ['400', '401', '403', '404', '409', '413', '415', '426', '429', '500', '503']) expect(seen).toContain(status)
  })

  test('request schemas are the validators’ own zod schemas, response schemas the Task schema', () => {
    const create = doc.paths['/api/tasks/'].post
    const { $schema, ...expected } = z.toJSONSchema(createTaskSchema, { io: 'input' })
    expect($schema).toBeString()
    // The validator's own schema, plus what withTaskTypes adds: each type's payload (the test below) and the names of the types.
    const { allOf, properties, ...rest } = create.requestBody.content['application/json'].schema
    const { properties: expectedProperties, ...expectedRest } = expected as { properties: Record<string, object> }
    expect(rest).toEqual(expectedRest)
    expect(allOf.length).toBeGreaterThanOrEqual(2)
    expect(properties).toEqual({ ...expectedProperties, type: { ...expectedProperties.type, examples: expect.any(Array), description: expect.any(String) } })
    expect(create.responses['201'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Task' })
    const task = z.toJSONSchema(taskSchema, { io: 'output' }).$defs!.Task as any
    expect(doc.components.schemas.Task).toEqual(task)
    expect(Object.keys(doc.components.schemas.Task.properties)).toContain('run_after')
    const list = doc.paths['/api/tasks/'].get.parameters.map((p: any) => `${p.in} ${p.name}`)
    expect(list).toEqual(['query status', 'query queue', 'query type', 'query q', 'query limit', 'query cursor'])
    expect(create.parameters.map((p: any) => `${p.in} ${p.name}`)).toEqual(['header idempotency-key'])
  })

  test('bearer security everywhere except health, docs, metrics and the dashboard, and says AUTH=off', () => {
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' })
    expect(doc.components.securitySchemes.bearerAuth.description).toContain('AUTH=off')
    expect(doc.security).toEqual([{ bearerAuth: [] }])
    const open = operations()
      .filter(({ op }) => Array.isArray(op.security) && op.security.length === 0)
      .map(({ path }) => path)
    expect(new Set(open)).toEqual(new Set(['/healthz', '/readyz', '/openapi.json', '/docs', '/docs/{asset}', '/metrics', '/', '/{file}']))
  })

  test('describes the dashboard and /metrics, each as GET only', () => {
    for (const path of ['/', '/{file}', '/metrics']) expect({ path, methods: Object.keys(doc.paths[path] ?? {}) }).toEqual({ path, methods: ['get'] })
    expect(Object.keys(doc.paths['/metrics'].get.responses['200'].content)).toEqual(['text/plain'])
    expect(Object.keys(doc.paths['/'].get.responses['200'].content)).toEqual(['text/html'])
  })

  test('describes the WebSocket endpoints: parameters, upgrade, message kinds, close codes', () => {
    const one = doc.paths['/ws/tasks/{id}/'].get
    const all = doc.paths['/ws/tasks/'].get
    expect(one.parameters.map((p: any) => `${p.in} ${p.name}`)).toEqual(['path id', 'query after_seq', 'query token'])
    expect(all.parameters.map((p: any) => `${p.in} ${p.name}`)).toEqual(['query after', 'query token'])
    for (const op of [one, all]) {
      const text = `${op.description}\n${op.responses['101'].description}`
      for (const word of ['Upgrade: websocket', '"kind":"change"', '"kind":"pong"', '1001', '1008', '4008', '4401', '4404']) expect(text).toContain(word)
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['101', '400', '401', '403', '426', '429']))
    }
    expect(one.responses['101'].description).toContain('"kind":"snapshot"')
    expect(all.responses['101'].description).toContain('"kind":"hello"')
    expect(one.responses).toHaveProperty(['404'])
  })

  test('/openapi.json and /docs need no token when AUTH is required', async () => {
    const app = createApp({
      db: sys.db,
      redis: sys.redis,
      keys: streamKeys(sys.prefix),
      eventsMaxLen: 1000,
      logger: createLogger('silent'),
      auth: { mode: 'required', verify: async () => null },
    })
    expect((await app.request('/api/tasks/')).status).toBe(401)
    expect((await app.request('/openapi.json')).status).toBe(200)
    expect((await app.request('/docs')).status).toBe(200)
    expect((await app.request('/docs/swagger-ui-bundle.js')).status).toBe(200)
  })
})

describe('GET /docs', () => {
  test('is an HTML page whose scripts and styles all come from this server', async () => {
    const res = await fetch(`${sys.http}/docs`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/html')
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'")
    const html = await res.text()
    expect(html).not.toMatch(/https?:\/\//)
    const urls = [...html.matchAll(/<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((u) => !u.startsWith('data:'))
    expect(urls.length).toBeGreaterThanOrEqual(3)
    for (const url of urls) {
      const asset = await fetch(new URL(url, `${sys.http}/docs`))
      expect({ url, status: asset.status }).toEqual({ url, status: 200 })
      expect(asset.headers.get('content-type')).toMatch(/javascript|css/)
      expect((await asset.text()).length).toBeGreaterThan(20)
    }
    // the page points Swagger UI at our document
    expect(await (await fetch(`${sys.http}/docs/init.js`)).text()).toContain("url: '/openapi.json'")
    expect((await fetch(`${sys.http}/docs/nope.js`)).status).toBe(404)
  })
})

describe('typed client', () => {
  // The @ts-expect-error line is checked by tsc (test/typecheck.test.ts fails on an unused one);
  // run against the server, it shows the types refuse what the API refuses.
  test('a call tsc refuses is one the server refuses too', async () => {
    const api = createClient(sys.http)
    // @ts-expect-error title must be a string
    const badTitle = await api.createTask({ title: 1 }).catch((e: unknown) => e)
    expect(badTitle).toBeInstanceOf(ApiError)
    expect((badTitle as ApiError).status).toBe(400)
    expect((badTitle as ApiError).details.map((d) => d.path)).toContain('title')
    const task = await api.createTask({ title: 'x' })
    const status: TaskStatus = task.status
    expect(status).toBe('PENDING')
    expect(taskSchema.safeParse(task).error).toBeUndefined()
  })

  test('creates, gets and cancels a task', async () => {
    const api = createClient(sys.http)
    const task = await api.createTask({ title: 'typed', payload: { duration_ms: 60_000 } })
    expect(task.title).toBe('typed')
    expect((await api.getTask(task.id)).id).toBe(task.id)
    expect((await api.cancelTask(task.id)).status).toBe('CANCELLED')
    const page = await api.listTasks({ status: 'CANCELLED' })
    expect(page.results.map((t) => t.id)).toContain(task.id)
  })

  test('followTask receives every change up to COMPLETED, once each', async () => {
    const api = createClient(sys.http)
    const task = await api.createTask({ title: 'followed', payload: { duration_ms: 200, steps: 4 } })
    const seen: TaskMessage[] = []
    const follow = followTask(sys.http, task.id, { onChange: (m) => seen.push(m) })
    try {
      await eventually(async () => seen.some((m) => m.status === 'COMPLETED'))
    } finally {
      follow.close()
    }
    const seqs = seen.map((m) => m.seq)
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1)
    expect(seen.at(-1)!.status).toBe('COMPLETED')
  })

  test('followTask reconnects after a dropped socket and resumes with after_seq, without gap or repeat', async () => {
    // A relay between client and API that the test can cut: it records each URL the client asks for.
    const relay = startWsRelay(sys.ws)
    const { asked, cut } = relay
    try {
      const api = createClient(sys.http)
      const task = await api.createTask({ title: 'resumed', payload: { duration_ms: 1500, steps: 10 } })
      const seen: TaskMessage[] = []
      const closes: { code: number; reconnecting: boolean }[] = []
      const follow = followTask(relay.base, task.id, {
        minDelayMs: 20,
        onChange: (m) => seen.push(m),
        onClose: (c) => closes.push(c),
      })
      try {
        await eventually(async () => seen.some((m) => m.status === 'PROCESSING' && m.progress > 0))
        cut()
        await eventually(async () => seen.some((m) => m.status === 'COMPLETED'))
      } finally {
        follow.close()
      }
      expect(asked.length).toBeGreaterThanOrEqual(2)
      expect(asked[0]).toBe(`/ws/tasks/${task.id}/`)
      expect(asked[1]).toMatch(new RegExp(`^/ws/tasks/${task.id}/\\?after_seq=\\d+$`))
      expect(closes[0]).toMatchObject({ reconnecting: true })
      // close() is final: its close event says so and nothing reconnects after it
      await eventually(async () => closes.at(-1)?.reconnecting === false)
      const count = asked.length
      await Bun.sleep(100)
      expect(asked.length).toBe(count)
      const seqs = seen.map((m) => m.seq)
      expect(seen[0]!.kind).toBe('snapshot')
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1)
      expect(seen.at(-1)!.status).toBe('COMPLETED')
    } finally {
      relay.stop()
    }
  })
})
