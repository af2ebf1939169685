import { afterAll, expect, test } from 'bun:test'
import { eventOffsets } from '../scripts/bench/phases/sockets'
import { deleteKeys, testRedis, uniquePrefix } from './helpers/redis'

const redis = testRedis()
const prefix = uniquePrefix()
afterAll(async () => {
  await deleteKeys(redis, prefix)
  redis.disconnect()
})

test("reference (d)'s event timing is the median gap between a task's events as the events stream took them, for the run's tasks only", async () => {
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
    const fields = ['t', String(task), 's', String(i + 1), 'c', '0', 'o', '', 'w', '', 'd', JSON.stringify({ task_id: task, status })]
    await redis.xadd(key, `${base + ms}-${i}`, ...fields)
  }
  expect(await eventOffsets(redis, key, 10)).toEqual([0, 4, 4])
})
