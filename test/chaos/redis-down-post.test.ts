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
    guarded(() => env, async () => {
      await env.spawnApi()
      await env.spawnWorker()
      await env.redis.stop()

      // Postgres is the source of truth: accepting a task must not depend on Redis.
      const res = await env.request('POST', '/api/tasks/', { title: 'while redis is down', payload: { duration_ms: 100 } })
      expect(res.status).toBe(201)
      expect(res.body).toMatchObject({ status: 'PENDING' })
      const id = res.body.id as number
      const [row] = await env.rows([id])
      expect(row!.status).toBe('PENDING')
      // Not known to be on the jobs stream, so the sweeper owns it.
      expect(row!.enqueued_at).toBeNull()

      const ready = await env.request('GET', '/readyz')
      expect(ready.status).toBe(503)
      expect(ready.body.error.code).toBe('unavailable')
      expect(ready.body.error.message).toMatch(/redis/)
      expect(ready.body.error.message).not.toMatch(/database/)

      // The task waits; it can only start once Redis is back.
      await Bun.sleep(1000)
      expect((await env.rows([id]))[0]!.status).toBe('PENDING')

      await env.redis.start() // empty: nothing of ours survived
      const [done] = await env.waitForStatus([id], ['COMPLETED', 'FAILED', 'CANCELLED'], 20_000)
      expect(done!.status).toBe('COMPLETED')
      await waitUntil('/readyz to be 200 again', async () => (await env.request('GET', '/readyz')).status === 200)

      await env.expectInvariants([id])
    }),
    45_000,
  )
})
