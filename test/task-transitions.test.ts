import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'kysely'
import { taskStatuses, type TaskStatus } from '../src/domain/tasks/task-status'
import { applyTransition, findTaskById } from '../src/domain/tasks/task.repository'
import { transitions, type Transition, type TransitionName } from '../src/domain/tasks/task-transitions'
import { createTestDatabase, insertTaskRows, type TestDatabase } from './helpers/database'

let database: TestDatabase
beforeAll(async () => {
  database = await createTestDatabase()
})
afterAll(() => database.drop())

const minuteAgo = () => new Date(Date.now() - 60_000)
type ParamsOf<N extends TransitionName> = Parameters<(typeof transitions)[N]['set']>[0]
const params: { [N in Exclude<TransitionName, 'create'>]: ParamsOf<N> } = {
  claim: { workerId: 'w2', leaseMs: 30_000 },
  handBack: undefined,
  recover: undefined,
  leaseLost: undefined,
  cancel: undefined,
  retryByRequest: undefined,
  complete: { result: sql`'{"ok":true}'::jsonb` },
  failAndRetry: { error: 'boom', attempt: 1, retryInMs: 1000 },
  fail: { error: 'boom', attempt: 1, retryInMs: 0 },
  dependencyFailed: undefined,
  reportProgress: { progress: 0.5 },
  rename: { title: 'renamed' },
}

/** A task in `status` that meets every guard but the status: due, its lease expired, on its last attempt only for leaseLost, a dependency gone only for dependencyFailed. */
async function taskIn(status: TaskStatus, name: TransitionName) {
  const [row] = await insertTaskRows(database.db, [
    {
      title: `${name} from ${status}`,
      status,
      // dependencyFailed fails only a task that never ran.
      attempts: name === 'dependencyFailed' ? 0 : 1,
      max_attempts: name === 'leaseLost' ? 1 : 3,
      locked_by: 'w1',
      locked_until: minuteAgo(),
      run_after: minuteAgo(),
      // A dependency that is gone: the one guard dependencyFailed adds.
      depends_on: name === 'dependencyFailed' ? [2 ** 40] : null,
    },
  ])
  return row!
}

const eventCount = async (taskId: number) =>
  Number(
    (
      await database.db
        .selectFrom('task_events')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('task_id', '=', taskId)
        .executeTakeFirstOrThrow()
    ).n,
  )

// Every transition the repositories apply, from every status: create is the INSERT itself.
const applied = Object.entries(transitions).filter(([name]) => name !== 'create') as [Exclude<TransitionName, 'create'>, Transition<unknown>][]

describe.each(applied)('%s', (name, t) => {
  test.each([...taskStatuses])(`from %s: changes the task only if it leaves from there`, async (status) => {
    const before = await taskIn(status, name)
    const changes = await applyTransition(database.db, t, params[name], (eb) => eb('id', '=', before.id))
    const after = (await findTaskById(database.db, before.id))!
    if (!t.from.includes(status)) {
      expect(changes).toEqual([])
      expect(after).toEqual((({ event_id, detail, stored_at, metric, ...row }) => row)(before))
      expect(await eventCount(before.id)).toBe(1)
      return
    }
    expect(changes).toHaveLength(1)
    expect(after).toMatchObject({ status: t.to ?? status, seq: before.seq + 1 })
    expect(changes[0]!.detail).toEqual(t.detail(params[name] as never) === null ? null : expect.anything())
    expect(changes[0]!.metric).toBe(t.metric)
    expect(await eventCount(before.id)).toBe(2)
  })
})
