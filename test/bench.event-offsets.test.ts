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
  // [task, status, ms after base]; task 9 is from before the run, with gaps that would move every median.
  const pushes: [number, string, number][] = [
    [9, 'PENDING', 0],
    [9, 'PROCESSING', 500],
    [9, 'COMPLETED', 900],
    [11, 'PENDING', 1000],
    // Claim and completion pushed together, as the worker does for a short task.
    [11, 'PROCESSING', 1003],
    [11, 'COMPLETED', 1003],
    [12, 'PENDING', 2000],
    [12, 'PROCESSING', 2004],
    [12, 'COMPLETED', 2004],
    [13, 'PENDING', 3000],
    [13, 'PROCESSING', 3020],
    [13, 'COMPLETED', 3025],
  ]
  for (const [i, [task, status, ms]] of pushes.entries()) {
    const fields = ['t', String(task), 's', String(i + 1), 'c', '0', 'o', '', 'w', '', 'd', JSON.stringify({ task_id: task, status })]
    await redis.xadd(key, `${base + ms}-${i}`, ...fields)
  }
  expect(await eventOffsets(redis, key, 10)).toEqual([0, 4, 4])
})
