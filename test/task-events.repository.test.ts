import { afterAll, beforeAll, expect, test } from 'bun:test'
import { deleteTaskById, changeTasks } from '../src/domain/tasks/task.repository'
import { deleteTaskEvents, latestEventId, listTaskEvents } from '../src/domain/task-events/task-event.repository'
import { createTestDatabase, insertTaskRows, type TestDatabase } from './helpers/database'

let database: TestDatabase
beforeAll(async () => {
  database = await createTestDatabase()
})
afterAll(() => database.drop())

test("a deletion's cursor follows every event before it and precedes every event after, though no row keeps it", async () => {
  const [doomed, other] = await insertTaskRows(database.db, [{ title: 'doomed' }, { title: 'other' }])
  await changeTasks(database.db, { progress: 0.5 }, (eb) => eb('id', '=', doomed!.id))
  const before = await latestEventId(database.db)
  await deleteTaskById(database.db, doomed!.id)
  const gone = await deleteTaskEvents(database.db, doomed!.id)
  expect(await listTaskEvents(database.db, doomed!.id, 0, 10)).toEqual([])
  expect(gone.cursor).toBeGreaterThan(before)
  const [after] = await changeTasks(database.db, { progress: 0.5 }, (eb) => eb('id', '=', other!.id))
  expect(after!.event_id).toBeGreaterThan(gone.cursor)
})
