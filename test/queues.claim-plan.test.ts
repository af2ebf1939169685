import { afterAll, beforeAll, expect, test } from 'bun:test'
import { sql } from 'kysely'
import { claimQuery } from '../src/domain/tasks/task-claim.repository'
import { createTestDatabase, type TestDatabase } from './helpers/database'

let d: TestDatabase
beforeAll(async () => {
  d = await createTestDatabase()
})
afterAll(() => d.drop())

type PlanNode = { 'Node Type': string; 'Actual Loops': number; 'Actual Rows': number; Operation?: string; 'Relation Name'?: string; Plans?: PlanNode[] }
class Rollback {
  constructor(readonly plan: PlanNode) {}
}
const nodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodes)]

test('the claim picks and locks its rows in one pass each, however many tasks are ready and whatever the statistics say', async () => {
  // Statistics taken while nothing was ready (the usual state), then a backlog: the planner still believes it small.
  await sql`analyze tasks`.execute(d.db)
  await sql`insert into tasks (title, type, payload, status, enqueued_at, run_after)
            select 't' || g, 'demo', '{}'::jsonb, 'PENDING', now(), now() from generate_series(1, 2000) g`.execute(d.db)
  const values: Record<string, unknown> = { n: 64, types: ['demo'], queues: null, skip: [], workerId: 'w1' }
  // Only the plan is wanted: the transaction is rolled back, so nothing claimed stays claimed.
  const plan = await d.db
    .transaction()
    .execute(async (trx) => {
      const { rows } = await sql<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>`explain (analyze, format json) ${claimQuery(30_000, (name) => values[name])}`.execute(
        trx,
      )
      throw new Rollback(rows[0]!['QUERY PLAN'][0].Plan)
    })
    .catch((e: unknown) => {
      if (e instanceof Rollback) return e.plan
      throw e
    })
  // Two locks, each taken in one pass: the picked tasks, and their owners' turn rows.
  const locks = nodes(plan).filter((n) => n['Node Type'] === 'LockRows')
  expect(locks.map((l) => l['Actual Loops'])).toEqual([1, 1])
  expect(nodes(plan).filter((n) => n['Node Type'] === 'ModifyTable' && n['Actual Loops'] !== 1)).toEqual([])
  // And it did claim: the pick chose 64 of the ready tasks, and the update changed those 64.
  expect(nodes(plan).find((n) => n['Node Type'] === 'ModifyTable' && n.Operation === 'Update' && n['Relation Name'] === 'tasks')?.['Actual Rows']).toBe(64)
  // And it took the turn row of their one owner (none: owner 0, whose row the migration made) to record the claim.
  expect(locks.map((l) => l['Actual Rows']).sort((a, b) => a - b)).toEqual([1, 64])
})
