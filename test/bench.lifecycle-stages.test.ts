import { afterAll, beforeAll, expect, test } from 'bun:test'
import pg from 'pg'
import { lifecycleStages } from '../scripts/bench/phases/lifecycle'
import { createTestDatabase, insertTaskRows, type TestDatabase } from './helpers/database'

let t: TestDatabase
let pool: pg.Pool
beforeAll(async () => {
  t = await createTestDatabase()
  pool = new pg.Pool({ connectionString: t.url, max: 1 })
})
afterAll(async () => {
  await pool.end()
  await t.drop()
})

test("a lifecycle's stages, of the tasks the load timed: queue and run from the row's times, deliver from its finish to the socket's receive", async () => {
  const base = Date.parse('2026-12-07T12:00:00Z')
  const at = (ms: number) => new Date(base + ms)
  const row = (createdMs: number, startedMs: number, finishedMs: number) => ({
    title: 't',
    type: 'demo',
    status: 'COMPLETED' as const,
    created_at: at(createdMs),
    started_at: at(startedMs),
    finished_at: at(finishedMs),
  })
  // One task from before the run, the window's two, and one the load did not time (warm-up): left out of every stage.
  const [before] = await insertTaskRows(t.db, [row(0, 100, 200)])
  const [a, b, untimed] = await insertTaskRows(t.db, [row(1000, 1002, 1003), row(2000, 2004, 2006), row(3000, 3100, 3300)])
  const received = { ids: [a!.id, b!.id], wallMs: [base + 1004.5, base + 2009] }
  const s = await lifecycleStages(pool, before!.id, untimed!.id, received)
  expect(s.queue_p50).toBe(3)
  expect(s.run_p99).toBe(1.99)
  // a: 1.5 ms from its finish to the socket, b: 3 ms.
  expect(s.deliver_p50).toBe(2.25)
  expect(s.deliver_p99).toBeCloseTo(2.985, 1)
})
