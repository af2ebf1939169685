import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { guarded, startChaosEnv, waitUntil, type ChaosEnv } from '../helpers/processes'

const VISIBILITY_TIMEOUT_MS = 2000

let env: ChaosEnv
beforeAll(async () => {
  env = await startChaosEnv({ env: { VISIBILITY_TIMEOUT_MS } })
})
afterAll(() => env?.cleanup())

type Pending = [id: string, consumer: string, idleMs: number, deliveries: number]

describe('a SIGKILLed worker leaves its jobs pending in the consumer group', () => {
  test(
    'a live worker takes them over (XAUTOCLAIM) once they are idle past the visibility timeout',
    guarded(
      () => env,
      async () => {
        await env.spawnApi()
        const first = await env.spawnWorker()
        const id = await env.createTask({ duration_ms: 5000 })
        await waitUntil('the first worker to be running the task', async () => (await env.rows([id]))[0]?.status === 'PROCESSING')

        const jobs = `${env.prefix}jobs`
        const pending = () => env.rds.xpending(jobs, 'workers', '-', '+', 100) as Promise<Pending[]>
        const before = await pending()
        expect(before.length).toBe(1)
        const [[entry, dead, , deliveries]] = before as [Pending]
        expect(deliveries).toBe(1)

        first.kill('SIGKILL')
        expect(await first.exited).not.toBe(0)
        const second = await env.spawnWorker()

        // The sweeper would recover the task through Postgres with a new job either way;
        // only a takeover moves the dead consumer's own entry out of its pending list.
        await waitUntil(
          "the dead consumer's entry to be taken over",
          async () => {
            env.expectNoCrash()
            return !(await pending()).some(([pid, consumer]) => pid === entry && consumer === dead)
          },
          // Claimable once idle for the timeout; the worker looks every half timeout.
          VISIBILITY_TIMEOUT_MS * 2 + 2000,
        )
        const tookOver = await second.waitForLog((l) => l.msg === 'took over jobs left by a stopped consumer', 1000)
        expect(tookOver.count).toBeGreaterThanOrEqual(1)
        // Nothing of the dead consumer is left pending.
        expect((await pending()).filter(([, consumer]) => consumer === dead)).toEqual([])

        const [done] = await env.waitForStatus([id], ['COMPLETED', 'FAILED'], 25_000)
        expect(done!.status).toBe('COMPLETED')
        await env.expectInvariants([id])
      },
    ),
    45_000,
  )
})
