import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { insertTasks, findTaskById } from '../src/domain/tasks/task.repository'
import type { NewTask } from '../src/domain/tasks/task.repository'
import { finishTasks } from '../src/domain/tasks/task-runs.repository'
import { claimNext } from '../src/domain/tasks/task-claim.repository'
import { createTestDatabase, type TestDatabase } from './helpers/database'

let database: TestDatabase
beforeAll(async () => {
  database = await createTestDatabase()
})
afterAll(() => database.drop())

describe('a create, as the API writes it', () => {
  const newTask = (title: string, key: string | null, extra: Partial<NewTask> = {}): NewTask => ({
    title,
    type: 'demo',
    payload: { n: title },
    max_attempts: 3,
    owner_id: null,
    idempotency_key: key,
    ...extra,
  })

  test('each returned row is the row Postgres stored, though only what Postgres chose is read back', async () => {
    const [first] = await insertTasks(database.db, [newTask('taken', 'key-taken')])
    const batch = [
      newTask('a', null, { timeout_ms: 5000, max_attempts: 7 }),
      newTask('skipped', 'key-taken'),
      newTask('b', 'key-b', { owner_id: null, payload: { nested: { list: [1, 'two', null] } } }),
      newTask('c', null),
    ]
    const rows = await insertTasks(database.db, batch)
    // The task whose key is taken gets no row, and each other row is its own task's.
    expect(rows.map((r) => r.title)).toEqual(['a', 'b', 'c'])
    for (const row of [first!, ...rows]) {
      const { event_id, detail, stored_at, metric, ...task } = row
      expect(task).toEqual((await findTaskById(database.db, row.id))!)
      expect(detail).toBeNull()
      expect(event_id).toBeGreaterThan(0)
      expect(stored_at).toBeGreaterThan(0)
      expect(metric).toBe('created')
    }
  })
})

describe('a run, claimed then finished, as the worker writes it', () => {
  test('the claim brings the payload the handler needs; the finish brings back only what its event needs', async () => {
    const payload = { duration_ms: 0, blob: 'x'.repeat(10_000) }
    const [task] = await insertTasks(database.db, [
      { title: 'big', type: 'demo', payload, max_attempts: 3, queue: 'runs', owner_id: null, idempotency_key: null },
    ])
    const [claimed] = await claimNext(database.db, 1, { id: 'w1', leaseMs: 30_000, types: ['demo'] }, { queues: ['runs'], skip: [] })
    expect(claimed).toMatchObject({ id: task!.id, status: 'PROCESSING', seq: 2, attempts: 1, payload, detail: { attempt: 1 } })

    const [finished] = await finishTasks(database.db, [{ key: { id: task!.id, workerId: 'w1', attempt: 1 }, resultJson: JSON.stringify({ ok: true }) }])
    expect(Object.keys(finished!).sort()).toEqual([
      'detail',
      'event_id',
      'id',
      'metric',
      'owner_id',
      'progress',
      'seq',
      'status',
      'stored_at',
      'type',
      'updated_at',
    ])
    expect(finished).toMatchObject({
      id: task!.id,
      status: 'COMPLETED',
      seq: 3,
      progress: 1,
      type: 'demo',
      metric: 'completed',
      detail: { result: { ok: true } },
    })
    expect(await findTaskById(database.db, task!.id)).toMatchObject({ status: 'COMPLETED', result: { ok: true }, payload })
  })
})
