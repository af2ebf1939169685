import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { changeTasks } from '../src/domain/tasks/task.repository'
import { listEventsInGaps } from '../src/domain/task-events/task-event.repository'
import { createLogger } from '../src/infra/logger'
import { Following } from '../src/api/ws/following'
import { messageToStreamed } from '../src/domain/task-events/task-event'
import { createTestDatabase, insertTaskRows, type TestDatabase } from './helpers/database'
import { eventually } from './helpers/poll'

let tdb: TestDatabase
beforeAll(async () => {
  tdb = await createTestDatabase()
})
afterAll(() => tdb.drop())

describe('a following state replaced by a new wake', () => {
  test('publishes nothing of the work it still had in flight, while the new one publishes', async () => {
    const id = (await insertTaskRows(tdb.db, [{ title: 'stale' }]))[0]!.id
    for (const progress of [0.2, 0.3]) await changeTasks(tdb.db, { progress }, (eb) => eb('id', '=', id))
    const [first, , third] = (await listEventsInGaps(tdb.db, [{ taskId: id, afterSeq: 0 }])).map(messageToStreamed)

    // What the tail does: it holds one state, and a wake replaces it whole.
    let current: Following | null = null
    const published: [string, number][] = []
    const follow = (name: string) => {
      const f: Following = new Following({
        db: tdb.db,
        logger: createLogger('silent'),
        resyncMs: 60_000,
        watched: new Map([[id, { seq: 1 }]]),
        isCurrent: () => current === f,
        publish: (e) => void published.push([name, e.seq]),
      })
      return f
    }
    const old = (current = follow('old'))
    old.offer(first!)
    // Seq 2 never reached the stream: filling it from Postgres is in flight when the hub wakes anew.
    old.offer(third!)
    current = follow('new')
    await eventually(async () => old.lastSeq(id) === 3, 5000, 10, { what: 'the old state to finish its gap fill' })
    // Its periodic check finds a change that was never streamed; a catch-up after an outage is late work too.
    await changeTasks(tdb.db, { progress: 0.4 }, (eb) => eb('id', '=', id))
    old.tick()
    await eventually(async () => old.lastSeq(id) === 4, 5000, 10, { what: 'the old state to finish its periodic check' })
    await old.catchUpAfterOutage(Date.now())
    expect(published).toEqual([['old', 1]])

    current.offer(third!)
    expect(published).toEqual([
      ['old', 1],
      ['new', 3],
    ])
  })
})
