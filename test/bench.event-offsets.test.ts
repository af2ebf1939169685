import { afterAll, expect, test } from 'bun:test'
import { eventShape } from '../scripts/bench/phases/sockets'
import { eventMessage } from '../scripts/bench/reference-event'
import { deleteKeys, testRedis, uniquePrefix } from './helpers/redis'

const redis = testRedis()
const prefix = uniquePrefix()
afterAll(async () => {
  await deleteKeys(redis, prefix)
  redis.disconnect()
})

test("reference (d)'s event timing and length are the median gap between a task's events as the events stream took them, and each status's median message length, for the run's tasks only", async () => {
  const key = `${prefix}events`
  const base = 1_700_000_000_000
  /** A task's three pushes: PENDING at `at` ms after base, PROCESSING and COMPLETED that many ms after it. */
  const task = (id: number, at: number, processing: number, completed: number): [number, string, number][] => [
    [id, 'PENDING', at],
    [id, 'PROCESSING', at + processing],
    [id, 'COMPLETED', at + completed],
  ]
  const pushes = [
    // From before the run, with gaps that would move every median.
    ...task(9, 0, 500, 900),
    // Claim and completion pushed together, as the worker does for a short task.
    ...task(11, 1000, 3, 3),
    ...task(12, 2000, 4, 4),
    ...task(13, 3000, 20, 25),
  ]
  for (const [i, [task, status, ms]] of pushes.entries()) {
    // COMPLETED messages carry a result whose length differs by task; the median is task 12's.
    const detail = status === 'COMPLETED' ? { result: 'r'.repeat(task * 10) } : null
    const fields = ['t', String(task), 's', String(i + 1), 'c', '0', 'o', '', 'w', '', 'd', JSON.stringify({ task_id: task, status, detail })]
    await redis.xadd(key, `${base + ms}-${i}`, ...fields)
  }
  const length = (task: number, status: string, detail: unknown = null) => JSON.stringify({ task_id: task, status, detail }).length
  expect(await eventShape(redis, key, 10)).toEqual({
    offsetsMs: [0, 4, 4],
    bytes: [length(11, 'PENDING'), length(11, 'PROCESSING'), length(12, 'COMPLETED', { result: 'r'.repeat(120) })],
  })
})

test("reference (d)'s message is padded to the system's length, still one JSON change with when it was due", () => {
  for (const bytes of [0, 50, 180, 400]) {
    const m = eventMessage('PROCESSING', 1234.5, bytes)
    expect(m.length).toBe(Math.max(bytes, eventMessage('PROCESSING', 1234.5).length))
    expect(JSON.parse(m)).toMatchObject({ kind: 'change', status: 'PROCESSING', sent: 1234.5 })
  }
})
