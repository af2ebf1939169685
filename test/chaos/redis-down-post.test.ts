import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { guarded, startChaosEnv, waitUntil, type ChaosEnv } from '../helpers/processes'

let env: ChaosEnv
beforeAll(async () => {
  env = await startChaosEnv()
})
afterAll(() => env?.cleanup())

describe('POST while Redis is down', () => {
  test(
    'is still accepted (201, PENDING in Postgres), /readyz names redis, and the task completes once Redis is back',
    guarded(
      () => env,
      async () => {
        await env.spawnApi()
        const worker = await env.spawnWorker()
        await env.redis.stop()

        // Postgres is the source of truth: accepting a task must not depend on Redis.
        const res = await env.request('POST', '/api/tasks/', { title: 'while redis is down', payload: { duration_ms: 100 } })
        expect(res.status).toBe(201)
        expect(res.body).toMatchObject({ status: 'PENDING' })
        const id = res.body.id as number
        // The 201 comes once Postgres has committed; the push to Redis, and its failure marking the
        // task not-enqueued (so the sweeper owns it), follow after the answer: wait for that state.
        const row = await waitUntil('the failed push to mark the task not-enqueued', async () => {
          const [r] = await env.rows([id])
          return r?.enqueued_at === null && r
        })
        expect(row.status).toBe('PENDING')

        const ready = await env.request('GET', '/readyz')
        expect(ready.status).toBe(503)
        expect(ready.body.error.code).toBe('unavailable')
        expect(ready.body.error.message).toMatch(/redis/)
        expect(ready.body.error.message).not.toMatch(/database/)

        // The task waits; it can only start once Redis is back (the worker has seen the outage too).
        await worker.waitForLog((l) => l.msg === 'redis unavailable, reconnecting')
        expect((await env.rows([id]))[0]!.status).toBe('PENDING')

        await env.redis.start() // empty: nothing of ours survived
        const [done] = await env.waitForStatus([id], ['COMPLETED', 'FAILED', 'CANCELLED'], 20_000)
        expect(done!.status).toBe('COMPLETED')
        await waitUntil('/readyz to be 200 again', async () => (await env.request('GET', '/readyz')).status === 200)

        await env.expectInvariants([id])
      },
    ),
    45_000,
  )
})
