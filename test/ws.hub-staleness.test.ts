import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { RootOperationNode } from 'kysely'
import { changeTasks } from '../src/domain/tasks/task.repository'
import { listEventsInGaps } from '../src/domain/task-events/task-event.repository'
import type { Db } from '../src/infra/db'
import { createLogger } from '../src/infra/logger'
import { Following } from '../src/api/ws/following'
import { messageToStreamed, type StreamedEvent } from '../src/domain/task-events/task-event'
import { createTestDatabase, insertTaskRows, type TestDatabase } from './helpers/database'
import { eventually } from './helpers/poll'

let tdb: TestDatabase
beforeAll(async () => {
  tdb = await createTestDatabase()
})
afterAll(() => tdb.drop())

/** A task with three events (seq 1 to 3), as the stream would carry them. */
async function taskWithThreeEvents(): Promise<{ id: number; events: StreamedEvent[] }> {
  const id = (await insertTaskRows(tdb.db, [{ title: 'stale' }]))[0]!.id
  for (const progress of [0.2, 0.3]) await changeTasks(tdb.db, { progress }, (eb) => eb('id', '=', id))
  return { id, events: (await listEventsInGaps(tdb.db, [{ taskId: id, afterSeq: 0 }])).map(messageToStreamed) }
}

/** What the tail does: it holds one state, and a wake replaces it whole. */
function tail(id: number) {
  const t = {
    current: null as Following | null,
    published: [] as [string, number][],
    follow(name: string, db: Db = tdb.db): Following {
      const f: Following = new Following({
        db,
        logger: createLogger('silent'),
        resyncMs: 60_000,
        watched: new Map([[id, { seq: 1 }]]),
        isCurrent: () => t.current === f,
        publish: (e) => void t.published.push([name, e.seq]),
      })
      return (t.current = f)
    },
  }
  return t
}

/** The db, with fn told of every query as Kysely builds it and counting those Postgres answered. */
function watchedDb(fn: (node: RootOperationNode) => void = () => {}) {
  const answered = { count: 0 }
  const db = tdb.db.withPlugin({
    transformQuery: (args) => {
      fn(args.node)
      return args.node
    },
    transformResult: async (args) => {
      answered.count++
      return args.result
    },
  })
  return { db, answered }
}

describe('a following state replaced by a new wake', () => {
  test('publishes nothing of a read it had in flight, while the new one publishes', async () => {
    const { id, events } = await taskWithThreeEvents()
    const [first, , third] = events
    const t = tail(id)
    // The hub wakes anew while the old state's gap fill is in Postgres.
    const { db } = watchedDb((node) => {
      if (JSON.stringify(node).includes('task_events') && t.current === old) t.follow('new')
    })
    const old = t.follow('old', db)
    old.offer(first!)
    // Seq 2 never reached the stream, so it is read from Postgres.
    old.offer(third!)
    await eventually(async () => old.lastSeq(id) === 3, 5000, 10, { what: 'the old state to finish its gap fill' })
    expect(t.published).toEqual([['old', 1]])

    t.current!.offer(third!)
    expect(t.published).toEqual([
      ['old', 1],
      ['new', 3],
    ])
  })

  test('reads nothing from Postgres: its gap fills and periodic checks return at once', async () => {
    const { id, events } = await taskWithThreeEvents()
    const [first, , third] = events
    const t = tail(id)
    const { db, answered } = watchedDb()
    const old = t.follow('old', db)
    await old.learnStart()
    old.offer(first!)
    t.follow('new')
    const before = answered.count

    // A gap, a watched task Postgres has moved past, and an outage: each would read Postgres for a current state.
    old.offer(third!)
    await changeTasks(tdb.db, { progress: 0.4 }, (eb) => eb('id', '=', id))
    old.tick()
    await old.catchUpAfterOutage(Date.now())
    await eventually(async () => (old.lastSeq(id) ?? 0) >= 3, 5000, 10, { what: 'the old state to be done with its gap' })
    // Nothing to wait for when nothing is read; a read the tick started would have come back within this pause.
    await Bun.sleep(200)
    expect(answered.count - before).toBe(0)
    expect(t.published).toEqual([['old', 1]])
  })
})
