import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { builtinHandlers } from '../src/handlers/registry'
import { HandlerModuleError, loadHandlerModules } from '../src/worker/handler-modules'
import { connect } from './helpers/ws-client'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'

const fixture = join(import.meta.dir, 'fixtures/handlers.ts')

describe('loading handler modules', () => {
  const dir = mkdtempSync(join(tmpdir(), 'taskline-handlers-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const handler = `{ payload: { safeParse: (v) => ({ success: true, data: v }) }, run: async () => 1 }`
  const file = (name: string, body: string) => {
    const path = join(dir, name)
    writeFileSync(path, body)
    return path
  }
  const builtins = builtinHandlers({ demoWorkMs: 0, http: { allowedOrigins: [] } })
  // A module in a temporary directory finds zod where this checkout has it.
  const zod = Bun.resolveSync('zod', import.meta.dir)

  test('each module adds its types beside the built-in ones, remembering where each came from', async () => {
    const a = file('a.js', `export default { 'resize-image': ${handler} }`)
    // A file named twice, spelled two ways, is loaded once.
    const { handlers, sources } = await loadHandlerModules([a, fixture, join(dir, '.', 'a.js')], builtins)
    expect(Object.keys(handlers).sort()).toEqual([...Object.keys(builtins), 'flaky', 'narrate', 'picky', 'resize-image', 'spin', 'unstorable'].sort())
    expect(sources.get('resize-image')).toBe(a)
    expect(sources.get('demo')).toBe('built-in')
  })

  test('a type defined twice is an error naming both files, or the file and the built-ins', async () => {
    const a = file('one.js', `export default { 'send-email': ${handler} }`)
    const b = file('two.js', `export default { 'send-email': ${handler} }`)
    const err = await loadHandlerModules([a, b], builtins).catch((e) => e)
    expect(err).toBeInstanceOf(HandlerModuleError)
    expect(err.message).toContain(a)
    expect(err.message).toContain(b)
    const shadow = file('demo.js', `export default { demo: ${handler} }`)
    expect((await loadHandlerModules([shadow], builtins).catch((e) => e)).message).toMatch(/"demo" is defined twice: in built-in and in .*demo\.js/)
  })

  test('a module that cannot be used says which file and why', async () => {
    const cases: [string, RegExp][] = [
      [file('no-default.js', 'export const x = 1'), /default export must be an object/],
      [file('no-run.js', `export default { x: { payload: { safeParse() {} } } }`), /"x" has no run/],
      [file('no-schema.js', `export default { x: { run: async () => 1 } }`), /"x" has no zod payload schema/],
      [file('bad-name.js', `export default { 'a b': ${handler} }`), /task type "a b" must be/],
      // A payload is always a JSON object: a schema that takes none registers a type no POST could use.
      [
        file('string-payload.ts', `import { z } from '${zod}'\nexport default { s: { payload: z.string(), run: async () => 1 } }`),
        /"s" payload schema must accept a JSON object/,
      ],
      [
        file('union-payload.ts', `import { z } from '${zod}'\nexport default { u: { payload: z.union([z.string(), z.number()]), run: async () => 1 } }`),
        /"u" payload schema must accept/,
      ],
      [file('throws.js', `throw new Error('boom at import')`), /cannot load handler module .*throws\.js: boom at import/],
      [join(dir, 'missing.ts'), /cannot load handler module .*missing\.ts/],
    ]
    for (const [path, message] of cases) expect((await loadHandlerModules([path], builtins).catch((e) => e)).message).toMatch(message)
    const objects = file(
      'object-payloads.ts',
      `import { z } from '${zod}'\nexport default { o: { payload: z.object({ a: z.string() }).or(z.object({ b: z.number() })), run: async () => 1 } }`,
    )
    expect(Object.keys((await loadHandlerModules([objects], builtins)).handlers)).toContain('o')
  })
})

describe("a worker running the user's handlers beside one that has none of them", () => {
  let sys: TestSystem
  let withHandlers: string
  let without: string
  beforeAll(async () => {
    sys = await startSystem({ workers: 0, env: { RETRY_BASE_MS: 50 } })
    without = (await sys.addWorker()).workerId
    // A worker with the handlers came and went: the API knows their types, and nobody handles them now.
    await (await sys.addWorker({ HANDLERS: fixture })).close()
  })
  afterAll(() => sys.stop())

  const getTask = async (id: number) => (await (await fetch(`${sys.http}/api/tasks/${id}`)).json()) as any
  const history = async (id: number) => ((await (await fetch(`${sys.http}/api/tasks/${id}/events`)).json()) as any).results as any[]
  const settled = (id: number) => eventually(async () => ((t) => ['COMPLETED', 'FAILED'].includes(t.status) && t)(await getTask(id)), 15_000)
  const post = (type: string, payload: unknown, extra: object = {}) => postJson(`${sys.http}/api/tasks`, { title: type, type, payload, ...extra })

  test('tasks of a type no worker handles wait, unfailed, and run once a worker that handles it starts', async () => {
    const posted = await Promise.all(Array.from({ length: 6 }, () => post('narrate', { steps: 1 })))
    const ids = posted.map((p) => p.body.id as number)
    // The worker without the handler claims only what it handles: a demo task posted after them runs, and they wait untouched.
    const demo = await post('demo', { duration_ms: 0 })
    await settled(demo.body.id)
    const rows = await sys.db.selectFrom('tasks').select(['status', 'attempts']).where('id', 'in', ids).execute()
    expect(rows.every((r) => r.status === 'PENDING' && r.attempts === 0)).toBe(true)
    expect(((await (await fetch(`${sys.http}/readyz`)).json()) as any).unhandled_types).toContain('narrate')
    withHandlers = (await sys.addWorker({ HANDLERS: fixture })).workerId
    for (const id of ids) expect(await settled(id)).toMatchObject({ status: 'COMPLETED', result: { narrated: 1 }, attempts: 1 })
    // Both workers are up now: a new batch never fails for want of a handler, whichever worker reads it.
    const more = await Promise.all(Array.from({ length: 12 }, () => post('narrate', { steps: 1 })))
    for (const { body } of more) expect(await settled(body.id)).toMatchObject({ status: 'COMPLETED', attempts: 1 })
  })

  test('GET /api/task-types/ lists each type with its schema and the live workers that handle it', async () => {
    const { results } = (await (await fetch(`${sys.http}/api/task-types/`)).json()) as any
    const byName = Object.fromEntries(results.map((t: any) => [t.name, t]))
    expect(byName.narrate).toMatchObject({ builtin: false, handled: true })
    expect(byName.narrate.workers.map((w: any) => w.worker_id)).toEqual([withHandlers])
    expect(byName.narrate.payload_schema.required).toEqual(['steps'])
    expect(byName.demo.builtin).toBe(true)
    expect(byName.demo.workers.map((w: any) => w.worker_id).sort()).toEqual([withHandlers, without].sort())
  })

  test('a progress message reaches the task\u2019s subscribers and its history', async () => {
    const { body } = await post('narrate', { steps: 2, step_ms: 150 })
    const socket = await connect(`${sys.ws}/ws/tasks/${body.id}`)
    try {
      await socket.waitFor((m) => m.detail?.message === 'step 2 of 2')
    } finally {
      socket.close()
    }
    await settled(body.id)
    expect((await history(body.id)).map((e) => e.detail?.message).filter(Boolean)).toEqual(['step 1 of 2', 'step 2 of 2'])
  })

  test('a PermanentError fails the task at once, whatever attempts remain', async () => {
    const { body } = await post('flaky', { how: 'permanent' }, { max_attempts: 5 })
    expect(await settled(body.id)).toMatchObject({ status: 'FAILED', attempts: 1, error: 'no use trying again (attempt 1)' })
  })

  test('a RetryableError waits at least the delay it asks for; a plain error the backoff', async () => {
    const later = await post('flaky', { how: 'retry-later', after_ms: 600 }, { max_attempts: 2 })
    const plain = await post('flaky', { how: 'plain' }, { max_attempts: 2 })
    await Promise.all([settled(later.body.id), settled(plain.body.id)])
    const [laterRetry, plainRetry] = await Promise.all([history(later.body.id), history(plain.body.id)]).then((hs) => hs.map((h) => h[2]))
    expect(laterRetry.detail).toMatchObject({ error: 'busy, come back later', retry_in_ms: 600 })
    expect(plainRetry.detail.retry_in_ms).toBeLessThan(100)
    const h = await history(later.body.id)
    expect(Date.parse(h[3].at) - Date.parse(h[2].at)).toBeGreaterThanOrEqual(600)
  })

  test('what a handler produces is stored even when Postgres could not take it as it is; what cannot be JSON fails the task', async () => {
    const made = await Promise.all(
      (['nul-result', 'bigint-result', 'nul-error', 'odd-progress'] as const).map((make) => post('unstorable', { make }, { max_attempts: 2 })),
    )
    const [result, bigint, error, progress] = made as [(typeof made)[0], (typeof made)[0], (typeof made)[0], (typeof made)[0]]
    expect(await settled(result.body.id)).toMatchObject({ status: 'COMPLETED', result: { s: 'a\uFFFDb', 'k\uFFFD': ['\uFFFD'] } })
    expect(await settled(bigint.body.id)).toMatchObject({ status: 'FAILED', attempts: 1 })
    expect((await getTask(bigint.body.id)).error).toStartWith("the handler's result is not JSON: ")
    expect(await settled(error.body.id)).toMatchObject({ status: 'FAILED', attempts: 2, error: 'bad\uFFFDx\uFFFD' })
    expect(await settled(progress.body.id)).toMatchObject({ status: 'COMPLETED' })
    const messages = (await history(progress.body.id)).map((e) => e.detail?.message).filter(Boolean)
    expect(messages).toEqual([`${'a'.repeat(499)}\uFFFD`, 'nul\uFFFDhere'])
  })

  test("a payload the JSON Schema lets through but the handler's own parse refuses fails without retries", async () => {
    const { status, body } = await post('picky', { word: 'lower' }, { max_attempts: 3 })
    expect(status).toBe(201)
    expect(await settled(body.id)).toMatchObject({ status: 'FAILED', attempts: 1, error: 'invalid payload: word must be upper case' })
  })

  test('the API refuses a payload that breaks the registered schema, naming the field, and an unknown type naming type', async () => {
    const wrong = await post('narrate', { steps: 'two' })
    expect(wrong.status).toBe(400)
    expect(wrong.body.error.details).toContainEqual({ path: 'payload.steps', message: 'must be integer' })
    const extra = await post('flaky', { how: 'plain', also: 1 })
    expect(extra.body.error.details).toContainEqual({ path: 'payload.also', message: 'unknown field' })
    const unknown = await post('no-such-type', {})
    expect(unknown.status).toBe(400)
    expect(unknown.body.error.details[0]).toMatchObject({ path: 'type' })
    expect(unknown.body.error.message).toContain('narrate')
    // demo is built in and registered by both workers: named once.
    expect(unknown.body.error.message.match(/\bdemo\b/g)).toHaveLength(1)
  })
})
