import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { guarded, startChaosEnv, waitUntil, type ChaosEnv } from '../helpers/processes'

let env: ChaosEnv
beforeAll(async () => {
  env = await startChaosEnv()
})
afterAll(() => env?.cleanup())

describe('POST while Redis is down', () => {
  test(
    'is still accepted (201, PENDING in Postgres), /readyz names redis, and the task runs all the same',
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

        const ready = await env.request('GET', '/readyz')
        expect(ready.status).toBe(503)
        expect(ready.body.error.code).toBe('unavailable')
        expect(ready.body.error.message).toMatch(/redis/)
        expect(ready.body.error.message).not.toMatch(/database/)

        // Workers claim from Postgres (the jobs stream only wakes them): the task runs while Redis is still down.
        await worker.waitForLog((l) => l.msg === 'redis unavailable, reconnecting')
        const [done] = await env.waitForStatus([id], ['COMPLETED', 'FAILED', 'CANCELLED'], 20_000)
        expect(done!.status).toBe('COMPLETED')

        await env.redis.start() // empty: nothing of ours survived
        await waitUntil('/readyz to be 200 again', async () => (await env.request('GET', '/readyz')).status === 200)
        // And work goes on once it is back.
        const after = await env.createTask({ duration_ms: 10 })
        expect((await env.waitForStatus([after], ['COMPLETED', 'FAILED', 'CANCELLED'], 20_000))[0]!.status).toBe('COMPLETED')

        await env.expectInvariants([id, after])
      },
    ),
    45_000,
  )
})
