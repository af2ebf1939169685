import { afterAll, beforeAll, expect, test } from 'bun:test'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'

/**
 * A worker alone (or among alike ones) looks in Postgres when a job comes,
 * not also when each run ends: one task at a time, every look claims its
 * task, and none comes back empty (taskline_claims_total says so).
 */

let sys: TestSystem
beforeAll(async () => {
  // The poll is a minute: no look is the poll's.
  sys = await startSystem({ env: { DEMO_WORK_MS: 0, WORKER_POLL_MS: 60_000 } })
})
afterAll(() => sys.stop())

const claims = async (result: 'claimed' | 'empty') => {
  const text = await (await fetch(`${sys.workers[0]!.metricsUrl.href}metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith('taskline_claims_total{') && l.includes(`result="${result}"`))
  return Number(line?.split(' ').at(-1) ?? 0)
}

test('one task after another: each look claims the task its job announced, and a run ending starts no empty look', async () => {
  const before = await claims('empty')
  for (let i = 0; i < 20; i++) {
    const { body } = await postJson(`${sys.http}/api/tasks/`, { title: `one ${i}` })
    await eventually(async () => (await sys.db.selectFrom('tasks').select('status').where('id', '=', body.id).executeTakeFirst())?.status === 'COMPLETED')
  }
  expect(await claims('claimed')).toBe(20)
  // None is expected; one is let pass as a margin. Looking on every run's end made twenty.
  expect((await claims('empty')) - before).toBeLessThanOrEqual(1)
})
