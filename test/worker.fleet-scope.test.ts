import { afterAll, beforeAll, beforeEach, expect, test } from 'bun:test'
import { sql } from 'kysely'
import { beat, markStopped, type WorkerBeat } from '../src/domain/workers/worker.repository'
import { createTestDatabase, type TestDatabase } from './helpers/database'

/**
 * Each beat answers whether another live worker lacks some of this one's
 * types or queues: only such a worker may read the job of a task that only
 * this one can take, and make a run's end worth a look here (see
 * worker.pump.test.ts).
 */

let database: TestDatabase
beforeAll(async () => {
  database = await createTestDatabase()
})
beforeEach(async () => {
  await sql`delete from workers`.execute(database.db)
})
afterAll(async () => {
  await database.drop()
})

const worker = (id: string, scope: Partial<WorkerBeat> = {}): WorkerBeat => ({
  id,
  host: 'h',
  pid: 1,
  version: 'v',
  queues: null,
  types: ['a', 'b'],
  concurrency: 4,
  running: 0,
  ...scope,
})
const differ = async (w: WorkerBeat) => (await beat(database.db, w)).othersDiffer

test('types: alike workers (in any order) see none lacking; one with fewer is seen by the others, not the other way round', async () => {
  expect(await differ(worker('alone'))).toBe(false)
  expect(await differ(worker('twin', { types: ['b', 'a'] }))).toBe(false)
  expect(await differ(worker('alone'))).toBe(false)

  // It can take every task 'alone' can: nothing of alone's is lost to it. But alone lacks its 'c'.
  expect(await differ(worker('more', { types: ['a', 'b', 'c'] }))).toBe(true)
  expect(await differ(worker('alone'))).toBe(false)

  // Everyone else can take fewer's tasks; fewer cannot take alone's 'b'.
  expect(await differ(worker('fewer', { types: ['a'] }))).toBe(false)
  expect(await differ(worker('alone'))).toBe(true)
  await markStopped(database.db, 'fewer')
  expect(await differ(worker('alone'))).toBe(false)
})

test('queues: every queue (none named) covers any list; a list covers only the queues it names', async () => {
  expect(await differ(worker('all'))).toBe(false)
  // 'all' lacks nothing of q1's; q1 lacks every queue but q1 of all's.
  expect(await differ(worker('q1', { queues: ['q1'] }))).toBe(false)
  expect(await differ(worker('all'))).toBe(true)
  expect(await differ(worker('q12', { queues: ['q2', 'q1'] }))).toBe(true)
  expect(await differ(worker('q1'))).toBe(true)
  // A worker gone quiet past the liveness window no longer counts.
  await sql`update workers set last_seen = now() - interval '1 hour' where id in ('all', 'q12')`.execute(database.db)
  expect(await differ(worker('q1'))).toBe(false)
})
