import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'kysely'
import { finishedTasksDeletion, deleteFinishedTasks } from '../src/domain/tasks/task-retention.repository'
import type { TaskStatus } from '../src/domain/tasks/task'
import { createDb } from '../src/infra/db'
import type { Logger } from '../src/infra/logger'
import { createMetrics } from '../src/infra/metrics'
import { streamKeys } from '../src/infra/stream-keys'
import { Retention, type RetentionPolicy } from '../src/worker/retention'
import { admin, insertTaskRows } from './helpers/database'
import { recordingLogger } from './helpers/logger'
import { connect } from './helpers/ws-client'
import { eventually, startSystem, type TestSystem } from './helpers/system'

let sys: TestSystem
beforeAll(async () => {
  sys = await startSystem({ workers: 0 })
})
afterAll(() => sys.stop())

const HOUR = 3_600_000
const DAY = 24 * HOUR
const policy: RetentionPolicy = { COMPLETED: HOUR, FAILED: DAY, CANCELLED: HOUR }

function retention(o: { db?: TestSystem['db']; batchSize?: number; pauseMs?: number; logger?: Logger; metrics?: ReturnType<typeof createMetrics> } = {}) {
  return new Retention({
    db: o.db ?? sys.db,
    redis: sys.redis,
    keys: streamKeys(sys.prefix),
    eventsMaxLen: 10_000,
    logger: o.logger ?? recordingLogger().logger,
    removals: o.metrics,
    policy,
    batchSize: o.batchSize ?? 5,
    pauseMs: o.pauseMs ?? 0,
  })
}

/** n tasks of this status that finished about `agoMs` ago (a second apart, oldest first), each with three events. */
async function finished(status: TaskStatus, agoMs: number, n: number): Promise<number[]> {
  const start = Date.now() - agoMs
  const rows = await insertTaskRows(
    sys.db,
    Array.from({ length: n }, (_, i) => ({ title: `${status} ${agoMs} ${i}`, status, finished_at: new Date(start + i * 1000), seq: 3 })),
  )
  const ids = rows.map((r) => r.id)
  await sys.db
    .insertInto('task_events')
    .values(ids.flatMap((id) => [1, 2].map((seq) => ({ task_id: id, seq, status, progress: 0.5 }))))
    .execute()
  return ids
}

async function existing(ids: number[]): Promise<number[]> {
  if (ids.length === 0) return []
  const rows = await sys.db.selectFrom('tasks').select('id').where('id', 'in', ids).orderBy('id').execute()
  return rows.map((r) => r.id)
}

async function eventCount(ids: number[]): Promise<number> {
  if (ids.length === 0) return 0
  const { n } = await sys.db
    .selectFrom('task_events')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('task_id', 'in', ids)
    .executeTakeFirstOrThrow()
  return Number(n)
}

async function clearTasks() {
  await sql`truncate tasks, task_events`.execute(sys.db)
}

describe('retention', () => {
  test('a pass removes only terminal tasks past their status retention, with their events; newer and active ones stay', async () => {
    await clearTasks()
    const oldCompleted = await finished('COMPLETED', 2 * HOUR, 12)
    const newCompleted = await finished('COMPLETED', 10 * 60_000, 3)
    const youngFailed = await finished('FAILED', 2 * HOUR, 4) // older than COMPLETED's retention, younger than FAILED's
    const oldFailed = await finished('FAILED', 2 * DAY, 5)
    const oldCancelled = await finished('CANCELLED', 2 * HOUR, 3)
    // Not finished: an old finished_at (a task retried by request keeps none, but the filter must not depend on it).
    const active = [...(await finished('PENDING', 3 * DAY, 2)), ...(await finished('PROCESSING', 3 * DAY, 2))]
    const { logger, lines } = recordingLogger()
    const metrics = createMetrics({ role: 'worker', redis: sys.redis, keys: streamKeys(sys.prefix) })

    const removed = await retention({ logger, metrics, batchSize: 5 }).runOnce()

    expect(removed).toEqual({ COMPLETED: 12, FAILED: 5, CANCELLED: 3 })
    const gone = [...oldCompleted, ...oldFailed, ...oldCancelled]
    expect(await existing(gone)).toEqual([])
    expect(await eventCount(gone)).toBe(0)
    const kept = [...newCompleted, ...youngFailed, ...active]
    expect(await existing(kept)).toEqual(kept.toSorted((a, b) => a - b))
    expect(await eventCount(kept)).toBe(3 * kept.length)

    const info = lines.filter((l) => l.level === 'info')
    expect(info).toEqual([
      { level: 'info', msg: 'removed finished tasks past their retention', fields: { removed: { COMPLETED: 12, FAILED: 5, CANCELLED: 3 } } },
    ])
    const text = await metrics.registry.getSingleMetricAsString('taskline_tasks_removed_total')
    expect(text).toContain('taskline_tasks_removed_total{status="COMPLETED",role="worker"} 12')
    expect(text).toContain('taskline_tasks_removed_total{status="FAILED",role="worker"} 5')
    expect(text).toContain('taskline_tasks_removed_total{status="CANCELLED",role="worker"} 3')

    // Nothing left to remove: an empty pass, and no log line.
    const again = recordingLogger()
    expect(await retention({ logger: again.logger }).runOnce()).toEqual({})
    expect(again.lines).toEqual([])
  })

  test('a batch removes at most its limit, oldest first, so a large backlog takes several statements', async () => {
    await clearTasks()
    const older = await finished('COMPLETED', 3 * HOUR, 5)
    const old = await finished('COMPLETED', 2 * HOUR, 4)
    const filter = { status: 'COMPLETED' as const, finishedBefore: new Date(Date.now() - HOUR) }
    const first = await deleteFinishedTasks(sys.db, filter, 3)
    expect(first.map((r) => r.id)).toEqual(older.slice(0, 3))
    expect((await deleteFinishedTasks(sys.db, filter, 3)).map((r) => r.id)).toEqual([...older.slice(3), old[0]!])
    expect((await deleteFinishedTasks(sys.db, filter, 3)).map((r) => r.id)).toEqual(old.slice(1))
    expect(await deleteFinishedTasks(sys.db, filter, 3)).toEqual([])
    expect(await eventCount([...older, ...old])).toBe(0)
  })

  test("a retention of 0 keeps that status's tasks", async () => {
    await clearTasks()
    const ids = await finished('COMPLETED', 400 * DAY, 2)
    const r = new Retention({
      db: sys.db,
      redis: sys.redis,
      keys: streamKeys(sys.prefix),
      eventsMaxLen: 10_000,
      logger: recordingLogger().logger,
      policy: { COMPLETED: 0, FAILED: DAY, CANCELLED: HOUR },
    })
    expect(await r.runOnce()).toEqual({})
    expect(await existing(ids)).toEqual(ids)
  })

  test('a socket following a removed task gets its last message, marked deleted', async () => {
    await clearTasks()
    const [id] = await finished('COMPLETED', 2 * HOUR, 1)
    const socket = await connect(`${sys.ws}/ws/tasks/${id}/`)
    try {
      await socket.waitFor((m) => m.kind === 'snapshot')
      await retention().runOnce()
      const last = await socket.waitFor((m) => m.deleted === true)
      expect(last).toMatchObject({ kind: 'change', task_id: id, seq: 4, status: 'COMPLETED', deleted: true, detail: { reason: 'deleted' } })
    } finally {
      socket.close()
    }
  })

  test('one pass at a time: another holder of the lock makes a pass skip, and of two passes at once one skips', async () => {
    await clearTasks()
    const ids = await finished('CANCELLED', 2 * HOUR, 10)
    // Someone else (another worker's pass) holds the lock: this pass does nothing.
    await admin(async (c) => {
      await c.query('select pg_advisory_lock(72616285)')
      expect(await retention().runOnce()).toBeNull()
      expect(await existing(ids)).toEqual(ids)
      await c.query('select pg_advisory_unlock(72616285)')
    }, sys.database.url)

    // Two workers, two pools; a pass of five batches with pauses between them overlaps the other's start.
    const otherDb = createDb(sys.database.url, 2)
    try {
      const results = await Promise.all([retention({ batchSize: 2, pauseMs: 50 }).runOnce(), retention({ db: otherDb, batchSize: 2, pauseMs: 50 }).runOnce()])
      expect(results.filter((r) => r === null)).toHaveLength(1)
      expect(results.find((r) => r !== null)).toEqual({ CANCELLED: 10 })
    } finally {
      await otherDb.destroy()
    }
    expect(await existing(ids)).toEqual([])
    // The lock was released: a later pass runs.
    expect(await retention().runOnce()).toEqual({})
  })

  test('the batch delete reads tasks_finished_idx and the events index, never a whole table', async () => {
    await clearTasks()
    // A table where most rows are not finished, as in a busy system, and statistics to plan with.
    await sql`
      insert into tasks (title, status, finished_at, seq)
      select 'bulk ' || i,
             (array['PENDING','PROCESSING','COMPLETED','FAILED','CANCELLED'])[1 + i % 5]::task_status,
             case when i % 5 >= 2 then now() - (i || ' seconds')::interval end, 1
        from generate_series(1, 50000) as i`.execute(sys.db)
    await sql`insert into task_events (task_id, seq, status, progress) select id, 1, status, 0 from tasks`.execute(sys.db)
    await sql`analyze tasks`.execute(sys.db)
    await sql`analyze task_events`.execute(sys.db)

    const q = finishedTasksDeletion({ status: 'COMPLETED', finishedBefore: new Date(Date.now() - HOUR) }, 500)
    const { rows } = await sql<{ 'QUERY PLAN': unknown }>`explain (format json) ${q}`.execute(sys.db)
    const nodes: { 'Node Type': string; 'Relation Name'?: string; 'Index Name'?: string }[] = []
    const walk = (n: any) => {
      nodes.push(n)
      for (const child of n.Plans ?? []) walk(child)
    }
    walk((rows[0]!['QUERY PLAN'] as any)[0].Plan)
    const plan = JSON.stringify(rows[0]!['QUERY PLAN'])
    expect(
      nodes.filter((n) => n['Node Type'] === 'Seq Scan').map((n) => n['Relation Name']),
      plan,
    ).toEqual([])
    expect(
      nodes.some((n) => n['Index Name'] === 'tasks_finished_idx'),
      plan,
    ).toBe(true)
    expect(
      nodes.some((n) => n['Relation Name'] === 'task_events' && n['Index Name'] === 'task_events_task_id_seq_key'),
      plan,
    ).toBe(true)
    await clearTasks()
  })

  test('a worker runs passes on its own, every RETENTION_INTERVAL_MS, and counts them in its /metrics', async () => {
    await clearTasks()
    const old = await finished('FAILED', 40 * DAY, 3)
    const young = await finished('FAILED', 2 * HOUR, 2)
    const worker = await sys.addWorker({ RETENTION_FAILED: '30d', RETENTION_INTERVAL_MS: 100 })
    await eventually(async () => (await existing(old)).length === 0, 10_000, 25, { what: 'the worker to remove the old FAILED tasks' })
    expect(await existing(young)).toEqual(young)
    const text = await (await fetch(new URL('metrics', worker.metricsUrl))).text()
    expect(text).toContain('taskline_tasks_removed_total{status="FAILED",role="worker"} 3')
  })
})
