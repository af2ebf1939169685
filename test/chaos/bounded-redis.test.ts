import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { streamKeys } from '../../src/infra/stream-keys'
import { guarded, startChaosEnv, waitUntil, type ChaosEnv } from '../helpers/processes'

const MAXLEN = 200
const BATCH = 300
const terminal = ['COMPLETED', 'FAILED', 'CANCELLED']

let env: ChaosEnv
beforeAll(async () => {
  // A Redis of our own, so used_memory is ours alone.
  env = await startChaosEnv({ env: { EVENTS_MAXLEN: MAXLEN, WORKER_CONCURRENCY: 32 } })
}, 30_000)
afterAll(() => env?.cleanup())

/** POSTs a batch of short tasks (4 events each: created, claimed, one progress, completed) and waits for all. */
async function runBatch(label: string): Promise<number[]> {
  const ids: number[] = []
  // A few at a time: a steady flow, not one burst.
  for (let i = 0; i < BATCH; i += 10) {
    ids.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => env.createTask({ duration_ms: 10, steps: 2 }, `${label} ${i + j}`)))))
  }
  await env.waitForStatus(ids, terminal, 60_000)
  return ids
}

async function usedMemory(): Promise<number> {
  const info = await env.rds.info('memory')
  return Number(info.match(/^used_memory:(\d+)/m)?.[1])
}

/** Once every task is done, no job may be left: idle workers read the last ones and delete what they read. */
async function expectJobsDrained() {
  const jobs = streamKeys(env.prefix).shards[0]!.jobs
  const drained = await waitUntil(
    'the jobs stream to drain',
    async () => {
      const [len, pending] = await Promise.all([env.rds.xlen(jobs), env.rds.xpending(jobs, 'workers') as Promise<[number, ...unknown[]]>])
      return len === 0 && pending[0] === 0 && { len, pending: pending[0] }
    },
    10_000,
  ).catch(async () => ({ len: await env.rds.xlen(jobs), pending: ((await env.rds.xpending(jobs, 'workers')) as [number])[0] }))
  expect(drained).toEqual({ len: 0, pending: 0 })
}

describe('Redis stays bounded', () => {
  test(
    `with EVENTS_MAXLEN=${MAXLEN} the events stream stays near it, finished jobs leave nothing behind, and memory is flat across batches`,
    guarded(
      () => env,
      async () => {
        await env.spawnApi()
        await env.spawnWorker()
        await env.spawnWorker()
        const events = streamKeys(env.prefix).shards[0]!.events

        const first = await runBatch('first')
        const eventRows = Number(
          (
            await env.db
              .selectFrom('task_events')
              .select((eb) => eb.fn.countAll<number>().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        )
        await expectJobsDrained()
        const lenAfterFirst = await env.rds.xlen(events)
        // Approximate trimming (MAXLEN ~) cuts whole nodes, so a little over MAXLEN is expected; twice is not.
        expect(lenAfterFirst).toBeGreaterThanOrEqual(MAXLEN)
        expect(lenAfterFirst).toBeLessThan(2 * MAXLEN)
        await Bun.sleep(500)
        const memAfterFirst = await usedMemory()

        const second = await runBatch('second')
        await expectJobsDrained()
        const lenAfterSecond = await env.rds.xlen(events)
        expect(lenAfterSecond).toBeLessThan(2 * MAXLEN)
        await Bun.sleep(500)
        const memAfterSecond = await usedMemory()

        console.log(
          `bounded-redis: ${first.length + second.length} tasks, ${eventRows} events in the first batch;` +
            ` events XLEN ${lenAfterFirst} then ${lenAfterSecond}; used_memory ${memAfterFirst} then ${memAfterSecond}` +
            ` (${(((memAfterSecond - memAfterFirst) / memAfterFirst) * 100).toFixed(1)}%)`,
        )
        expect(eventRows).toBeGreaterThan(1000)
        expect(memAfterSecond).toBeLessThan(memAfterFirst * 1.2)
        await env.expectInvariants([...first, ...second])
      },
    ),
    150_000,
  )
})
