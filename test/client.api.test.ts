import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { ApiError, TasklineClient, type Health, type Readiness, type Task, type TaskEvent, type TaskTypeInfo } from '../src/client'
import { taskEventSchema } from '../src/domain/task-events/task-event'
import { taskTypeSchema } from '../src/domain/task-types/task-type'
import { taskSchema } from '../src/domain/tasks/task'
import { createToken } from '../src/domain/tokens/token.service'
import { forgetWorkerTypes, registerWorkerTypes } from '../src/domain/task-types/task-type.repository'
import { eventually, startSystem, type TestSystem } from './helpers/system'

/**
 * Every HTTP method of the typed client against the real system with
 * authentication on. Each answer is parsed with the server's own zod schema,
 * and the client's types are compared with /openapi.json, so the client's
 * declarations cannot drift from what the API sends.
 */

let sys: TestSystem
let admin: TasklineClient
let alice: TasklineClient
let anonymous: TasklineClient
beforeAll(async () => {
  sys = await startSystem({ workers: 1, env: { AUTH: 'required', DEMO_WORK_MS: 20 } })
  admin = new TasklineClient({ baseUrl: sys.http, token: (await createToken(sys.db, 'root', true)).token })
  alice = new TasklineClient({ baseUrl: `${sys.http}/`, token: (await createToken(sys.db, 'alice', false)).token })
  anonymous = new TasklineClient({ baseUrl: sys.http })
})
afterAll(() => sys.stop())

/** The ApiError a call throws (fails the test if it resolves or throws anything else). */
async function refusal(call: Promise<unknown>): Promise<ApiError> {
  const e = await call.then(
    () => null,
    (err: unknown) => err,
  )
  expect(e).toBeInstanceOf(ApiError)
  return e as ApiError
}

const parsedTask = (t: Task) => expect(taskSchema.safeParse(t).error).toBeUndefined()
const parsedEvent = (e: TaskEvent) => expect(taskEventSchema.safeParse(e).error).toBeUndefined()

const finished = (client: TasklineClient, id: number) =>
  eventually(async () => {
    const t = await client.getTask(id)
    return t.status === 'COMPLETED' && t
  })

describe('tasks', () => {
  test('create, get, update, cancel, retry and delete', async () => {
    const task = await alice.createTask({ title: 'typed', payload: { duration_ms: 60_000 }, max_attempts: 2, timeout_ms: 120_000 })
    parsedTask(task)
    expect(task).toMatchObject({ title: 'typed', type: 'demo', status: 'PENDING', max_attempts: 2, timeout_ms: 120_000, seq: 1 })
    expect(await alice.getTask(task.id)).toMatchObject({ id: task.id, title: 'typed' })

    const renamed = await alice.updateTask(task.id, { title: 'renamed' })
    parsedTask(renamed)
    expect(renamed.title).toBe('renamed')

    const cancelled = await alice.cancelTask(task.id)
    parsedTask(cancelled)
    expect(cancelled.status).toBe('CANCELLED')
    const conflict = await refusal(alice.cancelTask(task.id))
    expect([conflict.status, conflict.code]).toEqual([409, 'conflict'])

    const retried = await alice.retryTask(task.id)
    parsedTask(retried)
    expect(retried).toMatchObject({ status: 'PENDING', attempts: 0 })

    expect(await alice.deleteTask(task.id)).toBeUndefined()
    const gone = await refusal(alice.getTask(task.id))
    expect([gone.status, gone.code]).toEqual([404, 'not_found'])
  })

  test('createTasks creates a batch in order, and a bad entry refuses it whole, naming its index', async () => {
    const batch = await alice.createTasks([
      { title: 'one', delay_ms: 60_000 },
      { title: 'two', delay_ms: 60_000 },
    ])
    expect(batch.map((t) => t.title)).toEqual(['one', 'two'])
    for (const t of batch) parsedTask(t)
    const refused = await refusal(alice.createTasks([{ title: 'ok' }, { title: '' }]))
    expect([refused.status, refused.details.map((d) => d.path)]).toEqual([400, ['tasks.1.title']])
    for (const t of batch) await alice.cancelTask(t.id)
  })

  test('an Idempotency-Key returns the first task; reused for another body it is a 409', async () => {
    const first = await alice.createTask({ title: 'once' }, { idempotencyKey: 'order-42' })
    const again = await alice.createTask({ title: 'once' }, { idempotencyKey: 'order-42' })
    expect(again.id).toBe(first.id)
    const reused = await refusal(alice.createTask({ title: 'twice' }, { idempotencyKey: 'order-42' }))
    expect([reused.status, reused.code]).toEqual([409, 'idempotency_conflict'])
  })

  test("an invalid body is an ApiError with the API's field details", async () => {
    const e = await refusal(alice.createTask({ title: '' }))
    expect([e.status, e.code]).toEqual([400, 'validation_error'])
    expect(e.details.map((d) => d.path)).toEqual(['title'])
    const badType = await refusal(alice.createTask({ title: 'x', type: 'no-such-type' }))
    expect(badType.details.map((d) => d.path)).toEqual(['type'])
  })

  test("without a token the API answers 401; another owner's task is a 404", async () => {
    const e = await refusal(anonymous.listTasks())
    expect([e.status, e.code]).toEqual([401, 'unauthorized'])
    const theirs = await admin.createTask({ title: 'not alice' })
    expect((await refusal(alice.getTask(theirs.id))).status).toBe(404)
    expect((await admin.getTask(theirs.id)).id).toBe(theirs.id)
  })

  test('listTasks reads one page; listAllTasks follows next through every page', async () => {
    const bob = new TasklineClient({ baseUrl: sys.http, token: (await createToken(sys.db, 'bob', false)).token })
    const ids: number[] = []
    for (let i = 0; i < 5; i++) ids.push((await bob.createTask({ title: `bob ${i}`, payload: { duration_ms: 60_000 } })).id)
    await bob.cancelTask(ids[1]!)
    const newestFirst = ids.toReversed()

    const page = await bob.listTasks({ limit: 2 })
    page.results.forEach(parsedTask)
    expect(page.results.map((t) => t.id)).toEqual(newestFirst.slice(0, 2))
    expect(page.next).toContain('cursor=')
    const all: number[] = []
    for await (const t of bob.listAllTasks({ limit: 2 })) all.push(t.id)
    expect(all).toEqual(newestFirst)
    const cancelled = await bob.listTasks({ status: 'CANCELLED' })
    expect(cancelled).toEqual({ results: [expect.objectContaining({ id: ids[1] })], next: null })
    const bad = await refusal(bob.listTasks({ limit: 1000 }))
    expect(bad.details.map((d) => d.path)).toEqual(['limit'])
  })

  test("listTaskEvents reads one page of a task's history; taskEvents follows next to its end", async () => {
    const task = await alice.createTask({ title: 'history', payload: { duration_ms: 100, steps: 5 } })
    const done = await finished(alice, task.id)
    const page = await alice.listTaskEvents(task.id, { limit: 2 })
    page.results.forEach(parsedEvent)
    expect(page.task_id).toBe(task.id)
    expect(page.results.map((e) => e.seq)).toEqual([1, 2])
    expect(page.next).toContain('after_seq=2')
    const rest = await alice.listTaskEvents(task.id, { afterSeq: done.seq - 1 })
    expect(rest).toMatchObject({ results: [{ seq: done.seq, status: 'COMPLETED' }], next: null })

    const seqs: number[] = []
    for await (const e of alice.taskEvents(task.id, { afterSeq: 1, limit: 2 })) {
      parsedEvent(e)
      seqs.push(e.seq)
    }
    expect(seqs).toEqual(Array.from({ length: done.seq - 1 }, (_, i) => i + 2))
    expect((await refusal(alice.listTaskEvents(task.id + 1000))).status).toBe(404)
  })
})

describe('the other routes', () => {
  test('listTaskTypes names the built-in types with their payload schemas', async () => {
    const { results } = await alice.listTaskTypes()
    for (const t of results) expect(taskTypeSchema.safeParse(t).error).toBeUndefined()
    expect(results.find((t) => t.name === 'demo')).toMatchObject({ builtin: true, payload_schema: { type: 'object' } })
  })

  test('deleteTaskType forgets a type nobody handles, for an admin; another token gets the 403', async () => {
    await registerWorkerTypes(sys.db, 'gone-worker', [{ name: 'client-retired', payloadSchema: { type: 'object' }, timeoutMs: null }])
    await forgetWorkerTypes(sys.db, 'gone-worker')
    expect((await refusal(alice.deleteTaskType('client-retired'))).status).toBe(403)
    await admin.deleteTaskType('client-retired')
    expect((await admin.listTaskTypes()).results.map((t) => t.name)).not.toContain('client-retired')
    expect((await refusal(admin.deleteTaskType('client-retired'))).status).toBe(404)
  })

  test('health and readiness need no token', async () => {
    expect(await anonymous.health()).toEqual({ status: 'ok' })
    expect(await anonymous.ready()).toMatchObject({ status: 'ready', database: 'ok', redis: 'ok' })
  })

  test('metrics and the OpenAPI document', async () => {
    expect(await anonymous.metrics()).toContain('# TYPE')
    expect(await anonymous.openApi()).toMatchObject({ openapi: expect.stringMatching(/^3\.1/) })
  })
})

/** For each field of T, whether it may be left out: the compiler keeps this list complete and right. */
type Presence<T> = { [K in keyof T]-?: object extends Pick<T, K> ? 'optional' : 'required' }

const declared = {
  getTask: {
    id: 'required',
    title: 'required',
    type: 'required',
    payload: 'required',
    status: 'required',
    attempts: 'required',
    max_attempts: 'required',
    timeout_ms: 'required',
    progress: 'required',
    result: 'required',
    error: 'required',
    seq: 'required',
    queue: 'required',
    priority: 'required',
    depends_on: 'required',
    run_after: 'required',
    created_at: 'required',
    updated_at: 'required',
    started_at: 'required',
    finished_at: 'required',
  } satisfies Presence<Task>,
  listTaskEvents: { task_id: 'required', results: 'required', next: 'required' } satisfies Presence<{
    task_id: number
    results: TaskEvent[]
    next: string | null
  }>,
  listTaskTypes: { results: 'required' } satisfies Presence<{ results: TaskTypeInfo[] }>,
  healthz: { status: 'required' } satisfies Presence<Health>,
  readyz: {
    status: 'required',
    database: 'required',
    redis: 'required',
    unhandled_types: 'required',
    unserved_queues: 'required',
  } satisfies Presence<Readiness>,
}
const declaredItems = {
  listTaskEvents: {
    kind: 'required',
    task_id: 'required',
    owner_id: 'required',
    seq: 'required',
    status: 'required',
    progress: 'required',
    at: 'required',
    cursor: 'required',
    detail: 'required',
    deleted: 'optional',
  } satisfies Presence<TaskEvent>,
  listTaskTypes: {
    name: 'required',
    builtin: 'required',
    payload_schema: 'required',
    timeout_ms: 'required',
    workers: 'required',
    handled: 'required',
  } satisfies Presence<TaskTypeInfo>,
}

test("the client's response types have the fields /openapi.json documents", async () => {
  const doc = (await anonymous.openApi()) as any
  const deref = (s: any): any => (s?.$ref ? doc.components.schemas[s.$ref.split('/').at(-1)] : s)
  const operations = new Map<string, any>()
  for (const item of Object.values(doc.paths) as any[]) for (const op of Object.values(item) as any[]) operations.set(op.operationId, op)
  const compare = (what: string, schema: any, presence: Record<string, string>) => {
    expect({ what, fields: Object.keys(schema.properties).sort() }).toEqual({ what, fields: Object.keys(presence).sort() })
    // A field of unknown type may be left out of `required`; one the client may miss must never be in it.
    for (const name of schema.required ?? []) expect({ what, name, presence: presence[name] }).toEqual({ what, name, presence: 'required' })
  }
  for (const [operationId, presence] of Object.entries(declared)) {
    const schema = deref(operations.get(operationId).responses['200'].content['application/json'].schema)
    compare(operationId, schema, presence)
    const items = declaredItems[operationId as keyof typeof declaredItems]
    if (items) compare(`${operationId} item`, deref(schema.properties.results.items), items)
  }
})
