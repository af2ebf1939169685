import { afterEach, describe, expect, test } from 'bun:test'
import { sql } from 'kysely'
import { createToken } from '../src/domain/tokens/token.service'
import { insertTaskRows } from './helpers/database'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'

let sys: TestSystem | undefined
afterEach(async () => {
  await sys?.stop()
  sys = undefined
})

type Row = { id: number; status: string; created_at: Date; started_at: Date | null; finished_at: Date | null; error: string | null; attempts: number }
const rows = (s: TestSystem, ids: number[]) =>
  s.db
    .selectFrom('tasks')
    .select(['id', 'status', 'created_at', 'started_at', 'finished_at', 'error', 'attempts'])
    .where('id', 'in', ids)
    .orderBy('id')
    .execute() as Promise<Row[]>
const dbNow = async (s: TestSystem) => (await sql<{ now: Date }>`select clock_timestamp() as now`.execute(s.db)).rows[0]!.now
const allDone = (s: TestSystem, ids: number[], timeoutMs = 30_000) =>
  eventually(async () => ((r) => r.every((t) => ['COMPLETED', 'FAILED', 'CANCELLED'].includes(t.status)) && r)(await rows(s, ids)), timeoutMs)

async function create(s: TestSystem, body: object, token?: string): Promise<number> {
  const res = await postJson(`${s.http}/api/tasks`, { title: 't', ...body }, token ? { authorization: `Bearer ${token}` } : {})
  expect(res.status).toBe(201)
  return res.body.id
}

/** The most tasks running at once, from their start and finish times. */
function peakOverlap(rs: Row[]): number {
  const edges = rs.flatMap((r) => [
    [r.started_at!.getTime(), 1],
    [r.finished_at!.getTime(), -1],
  ]) as [number, number][]
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let now = 0
  let peak = 0
  for (const [, d] of edges) peak = Math.max(peak, (now += d))
  return peak
}

describe('priority', () => {
  test('with one slot, a high-priority task starts before every low one still waiting when it arrived', async () => {
    sys = await startSystem({ workers: 1, env: { WORKER_CONCURRENCY: 1 } })
    // All at once: one slow POST after another must not let the worker drain them as they arrive.
    const bulk = await postJson(`${sys.http}/api/tasks/bulk`, {
      tasks: Array.from({ length: 20 }, () => ({ title: 'low', priority: -5, payload: { duration_ms: 60 } })),
    })
    const lows = bulk.body.results.map((t: { id: number }) => t.id) as number[]
    await eventually(async () => (await rows(sys!, lows)).some((r) => r.status === 'PROCESSING'))
    const high = await create(sys, { priority: 5, payload: { duration_ms: 0 } })
    const arrived = await dbNow(sys)
    const done = await allDone(sys, [...lows, high])
    const h = done.find((r) => r.id === high)!
    const waitingLows = done.filter((r) => lows.includes(r.id) && r.started_at! > arrived)
    // Most lows were still waiting: the high one did not simply come last.
    expect(waitingLows.length).toBeGreaterThan(10)
    for (const low of waitingLows) expect(low.started_at!.getTime()).toBeGreaterThan(h.started_at!.getTime())
  })
})

describe('fairness between owners', () => {
  test("one owner's 66 long tasks, over ten queues, do not make another owner's short task wait more than one slot's turn", async () => {
    sys = await startSystem({ workers: 1, env: { AUTH: 'required', WORKER_CONCURRENCY: 2 } })
    const alice = await createToken(sys.db, 'alice', false)
    const bob = await createToken(sys.db, 'bob', false)
    const bulk = await postJson(
      `${sys.http}/api/tasks/bulk`,
      // Spread over ten queues: turns are per owner, so more queue names buy no more turns.
      // Alternate lengths, so the two running ones end apart: this pins the running count's part of a turn; ended
      // together, alice would have none running, and the tie-break would decide (the one-slot tests below pin that).
      { tasks: Array.from({ length: 66 }, (_, i) => ({ title: `long ${i}`, queue: `q${i % 10}`, payload: { duration_ms: 1500 + (i % 2) * 500 } })) },
      { authorization: `Bearer ${alice.token}` },
    )
    expect(bulk.status).toBe(201)
    const longs = bulk.body.results.map((t: { id: number }) => t.id) as number[]
    await eventually(async () => (await rows(sys!, longs)).filter((r) => r.status === 'PROCESSING').length === 2)
    const short = await create(sys, { payload: { duration_ms: 1 } }, bob.token)
    const arrived = await dbNow(sys)
    const [s] = await allDone(sys, [short])
    // Bob's task took the first slot that came free: none of alice's started in between.
    const cutIn = (await rows(sys, longs)).filter((r) => r.started_at && r.started_at > arrived && r.started_at < s!.started_at!)
    expect(cutIn.map((r) => r.id)).toEqual([])
    expect(s!.status).toBe('COMPLETED')
  })
})

describe('fairness with one slot', () => {
  // With one slot, nobody's task is running when the next is picked: turns tie, and the owner served longest ago goes first.
  async function startOrder(tasks: { owner: 'alice' | 'bob'; priority?: number }[]) {
    sys = await startSystem({ workers: 1, env: { AUTH: 'required', WORKER_CONCURRENCY: 1 } })
    const admin = await createToken(sys.db, 'admin', true)
    const tokens = { alice: (await createToken(sys.db, 'alice', false)).token, bob: (await createToken(sys.db, 'bob', false)).token }
    const queue = (action: string) => fetch(`${sys!.http}/api/queues/fair/${action}`, { method: 'POST', headers: { authorization: `Bearer ${admin.token}` } })
    // Paused while they are posted, so all are ready when the worker first looks.
    expect((await queue('pause')).status).toBe(200)
    const ids: Record<number, string> = {}
    for (const t of tasks) {
      const id = await create(sys, { queue: 'fair', priority: t.priority ?? 0, payload: { duration_ms: 20 } }, tokens[t.owner])
      ids[id] = `${t.owner}${t.priority === undefined ? '' : ` p${t.priority}`}`
    }
    expect((await queue('resume')).status).toBe(200)
    const done = await allDone(sys, Object.keys(ids).map(Number))
    return done.sort((a, b) => a.started_at!.getTime() - b.started_at!.getTime() || a.id - b.id).map((r) => ids[r.id])
  }

  test('two owners alternate, whoever posted first and however many', async () => {
    const a = { owner: 'alice' } as const
    const b = { owner: 'bob' } as const
    expect(await startOrder([a, a, a, a, b, b])).toEqual(['alice', 'bob', 'alice', 'bob', 'alice', 'alice'])
  })

  test("priority orders an owner's own tasks and never jumps another owner's turn", async () => {
    const order = await startOrder([
      { owner: 'alice', priority: 10 },
      { owner: 'alice', priority: 5 },
      { owner: 'alice', priority: 1 },
      { owner: 'alice', priority: 0 },
      { owner: 'bob', priority: 0 },
    ])
    expect(order).toEqual(['alice p10', 'bob p0', 'alice p5', 'alice p1', 'alice p0'])
  })
})

describe('named queues', () => {
  test('a worker serves only the queues in QUEUES; another queue waits for a worker that serves it', async () => {
    sys = await startSystem({ workers: 0, env: { WORKER_POLL_MS: 200 } })
    await sys.addWorker({ QUEUES: 'emails' })
    const report = await create(sys, { queue: 'reports', payload: { duration_ms: 0 } })
    const email = await create(sys, { queue: 'emails', payload: { duration_ms: 0 } })
    await allDone(sys, [email])
    // A second email, posted after the report, runs too: the worker looked again and still left the report.
    const again = await create(sys, { queue: 'emails', payload: { duration_ms: 0 } })
    await allDone(sys, [again])
    expect(await rows(sys, [report])).toMatchObject([{ status: 'PENDING', attempts: 0 }])
    await sys.addWorker({ QUEUES: 'reports' })
    expect(await allDone(sys, [report])).toMatchObject([{ status: 'COMPLETED' }])
    const task = (await (await fetch(`${sys.http}/api/tasks/${report}`)).json()) as { queue: string; priority: number; depends_on: number[] }
    expect(task).toMatchObject({ queue: 'reports', priority: 0, depends_on: [] })
  })

  test('a paused queue starts nothing until resumed; only an admin may pause', async () => {
    sys = await startSystem({ workers: 1, env: { AUTH: 'required', WORKER_POLL_MS: 200 } })
    const user = await createToken(sys.db, 'user', false)
    const admin = await createToken(sys.db, 'admin', true)
    const call = async (token: string, path: string) => {
      const res = await fetch(`${sys!.http}/api/queues/${path}`, { method: path ? 'POST' : 'GET', headers: { authorization: `Bearer ${token}` } })
      return { status: res.status, body: (await res.json()) as any }
    }
    const refused = await call(user.token, 'emails/pause')
    expect(refused.status).toBe(403)
    expect(refused.body.error.code).toBe('forbidden')
    expect((await call(admin.token, 'no%20spaces/pause')).status).toBe(400)
    expect(await call(admin.token, 'emails/pause')).toMatchObject({ status: 200, body: { name: 'emails', paused: true } })

    const email = await create(sys, { queue: 'emails', payload: { duration_ms: 0 } }, user.token)
    const other = await create(sys, { payload: { duration_ms: 0 } }, user.token)
    await allDone(sys, [other])
    const later = await create(sys, { payload: { duration_ms: 0 } }, user.token)
    await allDone(sys, [later])
    expect(await rows(sys, [email])).toMatchObject([{ status: 'PENDING', attempts: 0 }])
    const listed = (await call(user.token, '')).body.results
    expect(listed).toContainEqual({ name: 'emails', paused: true, ready: 1, waiting: 0, running: 0 })

    expect(await call(admin.token, 'emails/resume')).toMatchObject({ status: 200, body: { name: 'emails', paused: false } })
    expect(await allDone(sys, [email])).toMatchObject([{ status: 'COMPLETED' }])
  })

  test('resuming a queue starts its ready tasks at once, not at the next poll', async () => {
    // A poll longer than the test: only a job can start a task here.
    sys = await startSystem({ workers: 1, env: { WORKER_POLL_MS: 60_000 } })
    const queueAction = async (action: string) => (await fetch(`${sys!.http}/api/queues/emails/${action}`, { method: 'POST' })).status
    expect(await queueAction('pause')).toBe(200)
    const email = await create(sys, { queue: 'emails', payload: { duration_ms: 0 } })
    // Jobs are read in order: once a later task has run, the paused one's job was read and spent.
    await allDone(sys, [await create(sys, { payload: { duration_ms: 0 } })])
    expect(await rows(sys, [email])).toMatchObject([{ status: 'PENDING' }])
    expect(await queueAction('resume')).toBe(200)
    expect(await allDone(sys, [email], 10_000)).toMatchObject([{ status: 'COMPLETED' }])
  })

  test('QUEUE_CONCURRENCY caps how many of a queue run at once across all workers, and the cap is used', async () => {
    sys = await startSystem({ workers: 0, env: { QUEUE_CONCURRENCY: 'emails:2', WORKER_CONCURRENCY: 8 } })
    await sys.addWorker()
    await sys.addWorker()
    const ids: number[] = []
    for (let i = 0; i < 10; i++) ids.push(await create(sys, { queue: 'emails', payload: { duration_ms: 300 } }))
    // The default queue is not held back by the cap.
    const free: number[] = []
    for (let i = 0; i < 6; i++) free.push(await create(sys, { payload: { duration_ms: 300 } }))
    const capped = await allDone(sys, ids)
    expect(capped.every((r) => r.status === 'COMPLETED')).toBe(true)
    expect(peakOverlap(capped)).toBe(2)
    expect(peakOverlap(await allDone(sys, free))).toBeGreaterThan(2)
  })

  test("a dead worker's slot in a capped queue comes back once its lease has expired", async () => {
    sys = await startSystem({ workers: 0, env: { QUEUE_CONCURRENCY: 'emails:1' } })
    // What a SIGKILLed worker leaves behind: its emails task PROCESSING under a lease nobody renews.
    const [dead] = await insertTaskRows(sys.db, [
      {
        title: 'held by a dead worker',
        queue: 'emails',
        status: 'PROCESSING',
        attempts: 1,
        max_attempts: 1,
        locked_by: 'gone',
        locked_until: sql<Date>`now() + interval '1 second'`,
      },
    ])
    const waiting = await create(sys, { queue: 'emails', payload: { duration_ms: 0 } })
    await sys.addWorker()
    const [d, w] = await allDone(sys, [dead!.id, waiting])
    expect(d).toMatchObject({ status: 'FAILED', error: 'worker lost: its lease expired before the attempt finished' })
    expect(w).toMatchObject({ status: 'COMPLETED' })
    expect(w!.started_at!.getTime()).toBeGreaterThanOrEqual(d!.finished_at!.getTime())
  })

  test('a limited queue whose cap covers every slot does not starve the other queues', async () => {
    sys = await startSystem({ workers: 0, env: { QUEUE_CONCURRENCY: 'reports:4', WORKER_CONCURRENCY: 4 } })
    const reports = await postJson(`${sys.http}/api/tasks/bulk`, {
      tasks: Array.from({ length: 12 }, (_, i) => ({ title: `report ${i}`, queue: 'reports', payload: { duration_ms: 300 } })),
    })
    const other = await create(sys, { payload: { duration_ms: 0 } })
    await sys.addWorker()
    const done = await allDone(sys, [...reports.body.results.map((t: { id: number }) => t.id), other])
    const o = done.find((r) => r.id === other)!
    const lastReport = Math.max(...done.filter((r) => r.id !== other).map((r) => r.started_at!.getTime()))
    expect(o.started_at!.getTime()).toBeLessThan(lastReport)
  })

  test('QUEUE_RATE caps how many of a queue start each second across all workers', async () => {
    sys = await startSystem({ workers: 0, env: { QUEUE_RATE: 'emails:5/s' } })
    await sys.addWorker()
    await sys.addWorker()
    const ids: number[] = []
    for (let i = 0; i < 15; i++) ids.push(await create(sys, { queue: 'emails', payload: { duration_ms: 0 } }))
    const starts = (await allDone(sys, ids)).map((r) => r.started_at!.getTime()).sort((a, b) => a - b)
    // A bucket of one second's worth (5), refilled at 5 a second: any ten starts span a second. The bucket
    // runs on each claim's transaction start, started_at on the clock later in that transaction: a start may
    // come as much later as its claim took, so the bounds leave a quarter second for it. Unlimited, all 15
    // would start within a few milliseconds.
    const slackMs = 250
    for (let i = 0; i + 10 < starts.length; i++) expect(starts[i + 10]! - starts[i]!).toBeGreaterThanOrEqual(1000 - slackMs)
    expect(starts.at(-1)! - starts[0]!).toBeGreaterThanOrEqual(2000 - slackMs)
  })
})

describe('dependencies', () => {
  test('a task waits for the tasks it depends on to complete, and fails if one of them fails', async () => {
    sys = await startSystem({ workers: 1, env: { RETRY_BASE_MS: 10 } })
    const first = await create(sys, { payload: { duration_ms: 300 } })
    const second = await create(sys, { payload: { duration_ms: 100 } })
    const after = await create(sys, { depends_on: [first, second], payload: { duration_ms: 0 } })
    const doomed = await create(sys, { max_attempts: 1, payload: { fail: true, duration_ms: 0 } })
    const orphan = await create(sys, { depends_on: [first, doomed], payload: { duration_ms: 0 } })
    const done = await allDone(sys, [first, second, after, doomed, orphan])
    const [f, s, a, , o] = done
    expect(a).toMatchObject({ status: 'COMPLETED' })
    expect(a!.started_at!.getTime()).toBeGreaterThanOrEqual(Math.max(f!.finished_at!.getTime(), s!.finished_at!.getTime()))
    expect(o).toMatchObject({ status: 'FAILED', attempts: 0, error: `dependency ${doomed} ended FAILED` })
  })

  test('a dependent that ran already is not failed when its completed dependency is deleted while it backs off', async () => {
    sys = await startSystem({ workers: 1, env: { RETRY_BASE_MS: 1500 } })
    const first = await create(sys, { payload: { duration_ms: 0 } })
    const dependent = await create(sys, { depends_on: [first], max_attempts: 2, payload: { fail: true, duration_ms: 0 } })
    await eventually(async () => ((r) => r?.status === 'PENDING' && r.attempts === 1)((await rows(sys!, [dependent]))[0]), 15_000)
    expect((await fetch(`${sys.http}/api/tasks/${first}/`, { method: 'DELETE' })).status).toBe(204)
    const [d] = await allDone(sys, [dependent])
    expect(d).toMatchObject({ status: 'FAILED', attempts: 2 })
    expect(d!.error).not.toContain('dependency')
  })

  test("depends_on names only the caller's own tasks: another owner's or a missing one is a 400 naming the entry", async () => {
    sys = await startSystem({ workers: 0, env: { AUTH: 'required' } })
    const alice = await createToken(sys.db, 'alice', false)
    const bob = await createToken(sys.db, 'bob', false)
    const hers = await create(sys, {}, alice.token)
    const res = await postJson(`${sys.http}/api/tasks`, { title: 'x', depends_on: [hers, 2 ** 40] }, { authorization: `Bearer ${bob.token}` })
    expect(res.status).toBe(400)
    expect(res.body.error.details).toEqual([
      { path: 'depends_on.0', message: `task ${hers} not found` },
      { path: 'depends_on.1', message: `task ${2 ** 40} not found` },
    ])
    expect(await create(sys, { depends_on: [hers] }, alice.token)).toBeGreaterThan(hers)
    const bad = await postJson(`${sys.http}/api/tasks`, { title: 'x', priority: 11, queue: '-x' }, { authorization: `Bearer ${alice.token}` })
    expect(bad.status).toBe(400)
    expect(bad.body.error.details.map((d: { path: string }) => d.path).sort()).toEqual(['priority', 'queue'])
  })
})
