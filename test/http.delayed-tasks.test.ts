import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'

/**
 * run_at and delay_ms: a delayed task is stored PENDING with run_after in the
 * future and is not queued; the sweeper queues it once due, in time order.
 */
let sys: TestSystem
beforeAll(async () => {
  sys = await startSystem({ workers: 1, env: { DEMO_WORK_MS: 0 } })
})
afterAll(() => sys.stop())

const post = (body: object) => postJson(`${sys.http}/api/tasks`, { title: 'later', ...body })
const getTask = async (id: number) => (await (await fetch(`${sys.http}/api/tasks/${id}`)).json()) as any
const history = async (id: number) => ((await (await fetch(`${sys.http}/api/tasks/${id}/events`)).json()) as any).results as any[]
const row = (id: number) =>
  sys.db.selectFrom('tasks').select(['status', 'run_after', 'enqueued_at', 'started_at', 'attempts']).where('id', '=', id).executeTakeFirstOrThrow()

describe('delayed tasks', () => {
  test('delay_ms: PENDING and not queued until its time, then run, never before', async () => {
    const before = Date.now()
    const { status, body } = await post({ delay_ms: 1500 })
    expect(status).toBe(201)
    expect(body.status).toBe('PENDING')
    const runAfter = Date.parse(body.run_after)
    expect(runAfter).toBeGreaterThanOrEqual(before + 1500)
    expect((await row(body.id)).enqueued_at).toBeNull()
    const done = await eventually(async () => ((t) => t.status === 'COMPLETED' && t)(await getTask(body.id)), 15_000)
    const processing = (await history(body.id)).find((e) => e.status === 'PROCESSING')
    expect(Date.parse(processing.at)).toBeGreaterThanOrEqual(runAfter)
    expect(Date.parse(done.started_at)).toBeGreaterThanOrEqual(runAfter)
  })

  test('run_at: a future time is kept as run_after; a past one runs now', async () => {
    const at = new Date(Date.now() + 60_000).toISOString()
    const later = await post({ run_at: at })
    expect(Date.parse(later.body.run_after)).toBe(Date.parse(at))
    const past = await post({ run_at: '2020-01-01T00:00:00Z' })
    expect((await row(past.body.id)).enqueued_at).not.toBeNull()
    await eventually(async () => (await getTask(past.body.id)).status === 'COMPLETED')
    expect((await getTask(later.body.id)).status).toBe('PENDING')
    await postJson(`${sys.http}/api/tasks/${later.body.id}/cancel`, {})
  })

  test('a delayed task can be cancelled, and then never runs', async () => {
    const { body } = await post({ delay_ms: 400 })
    expect((await postJson(`${sys.http}/api/tasks/${body.id}/cancel`, {})).body.status).toBe('CANCELLED')
    // Past its time and several sweeps later, still cancelled and never started.
    const sweeps = sys.config.SWEEP_INTERVAL_MS * 5
    await eventually(async () => Date.now() > Date.parse(body.run_after) + sweeps, 10_000)
    expect(await row(body.id)).toMatchObject({ status: 'CANCELLED', attempts: 0, started_at: null })
  })

  test('bad timing is a 400 naming the field, and nothing is stored', async () => {
    const cases: [object, string][] = [
      [{ run_at: 'tomorrow' }, 'run_at'],
      [{ run_at: '2026-12-24T18:00:00' }, 'run_at'],
      [{ run_at: new Date(Date.now() + 400 * 86_400_000).toISOString() }, 'run_at'],
      [{ delay_ms: -1 }, 'delay_ms'],
      [{ delay_ms: 1.5 }, 'delay_ms'],
      [{ delay_ms: 400 * 86_400_000 }, 'delay_ms'],
      [{ delay_ms: 10, run_at: new Date().toISOString() }, 'delay_ms'],
    ]
    for (const [body, path] of cases) {
      const res = await post(body)
      expect({ body, status: res.status, paths: res.body.error?.details?.map((d: any) => d.path) }).toEqual({ body, status: 400, paths: [path] })
    }
  })
})

describe('delayed tasks that come due together', () => {
  let late: TestSystem
  beforeAll(async () => {
    late = await startSystem({ workers: 0, env: { DEMO_WORK_MS: 0, WORKER_CONCURRENCY: 1 } })
  })
  afterAll(() => late.stop())

  test('are queued in the order of their times, not of their creation', async () => {
    // Created latest-first; no worker runs until all are due, so one sweep queues them together.
    const now = Date.now()
    const ids: number[] = []
    for (const offset of [600, 500, 400, 300, 200]) {
      const { body } = await postJson(`${late.http}/api/tasks`, { title: `at +${offset}`, run_at: new Date(now + offset).toISOString() })
      ids.push(body.id)
    }
    await eventually(async () => Date.now() > now + 700, 5000)
    await late.addWorker()
    const rows = await eventually(async () => {
      const r = await late.db.selectFrom('tasks').select(['id', 'run_after', 'started_at', 'status']).where('id', 'in', ids).execute()
      return r.every((t) => t.status === 'COMPLETED') && r
    }, 15_000)
    const byStart = [...rows].sort((a, b) => a.started_at!.getTime() - b.started_at!.getTime()).map((t) => t.id)
    const byTime = [...rows].sort((a, b) => a.run_after.getTime() - b.run_after.getTime()).map((t) => t.id)
    expect(byStart).toEqual(byTime)
    expect(byStart).toEqual([...ids].reverse())
  })
})
