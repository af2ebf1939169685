import { describe, expect, test } from 'bun:test'
import type { TaskRow } from '../tasks/task'
import { changeToEvent, deletionEvent, eventRowToMessage, eventToFields, fieldsToEvent, messageToStreamed, stopsItsRun, taskEventSchema } from './task-event'

const at = new Date('2026-01-02T03:04:05.678Z')
const change = {
  id: 7,
  owner_id: 3,
  type: 'demo',
  seq: 4,
  status: 'PROCESSING',
  progress: 0.5,
  updated_at: at,
  event_id: 41,
  detail: { attempt: 1 },
  stored_at: 1_700_000_000_000.5,
  metric: null,
} as const
const task = { id: 7, owner_id: null, seq: 4, status: 'CANCELLED', progress: 0.25 } as TaskRow

describe('task events', () => {
  test('a change, a row read back and a deletion are each a valid message', () => {
    const fromChange = changeToEvent(change)
    expect(fromChange).toEqual({
      kind: 'change',
      task_id: 7,
      owner_id: 3,
      seq: 4,
      status: 'PROCESSING',
      progress: 0.5,
      at: at.toISOString(),
      cursor: 41,
      detail: { attempt: 1 },
    })
    const fromRow = eventRowToMessage({ id: 41, task_id: 7, owner_id: 3, seq: 4, status: 'PROCESSING', progress: 0.5, at, detail: { attempt: 1 } })
    expect(fromRow).toEqual(fromChange)
    const deleted = deletionEvent(task, { cursor: 42, at })
    expect(deleted).toMatchObject({ seq: 5, cursor: 42, status: 'CANCELLED', deleted: true, detail: { reason: 'deleted' } })
    for (const m of [fromChange, deleted]) expect(taskEventSchema.parse(m)).toEqual(m)
  })

  test('stream fields carry the message and its routing, whether read as strings or bytes', () => {
    const message = changeToEvent(change)
    const fields = eventToFields({ message, storedAt: change.stored_at })
    for (const read of [fields, fields.map((f) => Buffer.from(f))]) {
      const e = fieldsToEvent(read)!
      expect({ taskId: e.taskId, ownerId: e.ownerId, seq: e.seq, cursor: e.cursor, storedAt: e.storedAt }).toEqual({
        taskId: 7,
        ownerId: 3,
        seq: 4,
        cursor: 41,
        storedAt: change.stored_at,
      })
      expect(JSON.parse(e.json)).toEqual(message)
    }
    expect(messageToStreamed(message)).toMatchObject({ taskId: 7, ownerId: 3, seq: 4, cursor: 41, storedAt: null, json: JSON.stringify(message) })
  })

  test('a cancellation and a deletion stop a running handler; other changes do not', () => {
    expect(stopsItsRun(changeToEvent(change))).toBe(false)
    expect(stopsItsRun(changeToEvent({ ...change, status: 'CANCELLED' }))).toBe(true)
    expect(stopsItsRun(deletionEvent({ ...task, status: 'COMPLETED' }, { cursor: 42, at }))).toBe(true)
  })
})
