import { afterAll, beforeAll, expect, test } from 'bun:test'
import { sql } from 'kysely'
import { beat, markStopped, type WorkerBeat } from '../src/domain/workers/worker.repository'
import { createTestDatabase, type TestDatabase } from './helpers/database'

/**
 * Each beat answers whether another live worker serves other queues or types:
 * only then may a job this worker needs be read by a worker that cannot take
 * its task, and a run's end be worth a look (see worker.pump.test.ts).
 */

let database: TestDatabase
beforeAll(async () => {
  database = await createTestDatabase()
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

test('alike workers (the same types in any order, every queue) see no other kind; one with other types or queues is seen', async () => {
  const db = database.db
  expect(await beat(db, worker('alone'))).toEqual({ othersDiffer: false })
  expect(await beat(db, worker('twin', { types: ['b', 'a'] }))).toEqual({ othersDiffer: false })
  expect(await beat(db, worker('alone'))).toEqual({ othersDiffer: false })

  expect(await beat(db, worker('more-types', { types: ['a', 'b', 'c'] }))).toEqual({ othersDiffer: true })
  expect(await beat(db, worker('alone'))).toEqual({ othersDiffer: true })
  await markStopped(db, 'more-types')
  expect(await beat(db, worker('alone'))).toEqual({ othersDiffer: false })

  expect(await beat(db, worker('one-queue', { queues: ['q'] }))).toEqual({ othersDiffer: true })
  expect(await beat(db, worker('alone'))).toEqual({ othersDiffer: true })
  expect(await beat(db, worker('same-queue', { queues: ['q'] }))).toEqual({ othersDiffer: true })
  // A worker gone quiet past the liveness window no longer counts.
  await sql`update workers set last_seen = now() - interval '1 hour' where id in ('one-queue', 'same-queue')`.execute(db)
  expect(await beat(db, worker('alone'))).toEqual({ othersDiffer: false })
})

test('workers that serve the same queues, listed in any order, are alike', async () => {
  const db = database.db
  await sql`delete from workers`.execute(db)
  expect(await beat(db, worker('x', { queues: ['q1', 'q2'] }))).toEqual({ othersDiffer: false })
  expect(await beat(db, worker('y', { queues: ['q2', 'q1'] }))).toEqual({ othersDiffer: false })
  expect(await beat(db, worker('z', { queues: ['q2'] }))).toEqual({ othersDiffer: true })
})
