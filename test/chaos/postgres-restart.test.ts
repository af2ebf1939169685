import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { guarded, startChaosEnv, waitUntil, type ChaosEnv } from '../helpers/processes'

let env: ChaosEnv
beforeAll(async () => {
  env = await startChaosEnv({ env: { VISIBILITY_TIMEOUT_MS: 3000, WORKER_CONCURRENCY: 3 } })
})
afterAll(() => env?.cleanup())

describe('Postgres restarted mid-run', () => {
  test(
    'tasks in flight all complete; while down the API answers 503 "unavailable", never 500; it recovers by itself',
    guarded(
      () => env,
      async () => {
        await env.spawnApi()
        await env.spawnWorker()
        const ids: number[] = []
        // Frequent progress writes keep worker connections busy, as a loaded worker's are, when Postgres dies.
        for (let i = 0; i < 6; i++) ids.push(await env.createTask({ duration_ms: 2000, steps: 50 }, `pg-restart ${i}`))
        await waitUntil('some tasks running', async () => (await env.rows(ids)).some((r) => r.status === 'PROCESSING'))

        // Clients keep reading throughout: requests in flight when Postgres dies must get a 503 too.
        let loading = true
        const answers: (number | string)[] = []
        const load = Array.from({ length: 4 }, async () => {
          while (loading) {
            const res = await env.request('GET', '/api/tasks/').catch((e) => ({ status: `no answer: ${(e as Error).message}`, body: null }))
            answers.push(res.status === 503 && res.body?.error?.code !== 'unavailable' ? '503 without code unavailable' : res.status)
            await Bun.sleep(5)
          }
        })
        await Bun.sleep(200)

        // A crash, not a clean shutdown: connections die mid-query.
        await env.pg.stop('immediate')
        const downAt = Date.now()

        const list = await env.request('GET', '/api/tasks/')
        expect({ status: list.status, body: list.body }).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } })
        expect(list.headers.get('content-type')).toMatch(/application\/json/)
        const one = await env.request('GET', `/api/tasks/${ids[0]}`)
        expect({ status: one.status, code: one.body?.error?.code }).toEqual({ status: 503, code: 'unavailable' })
        const ready = await env.request('GET', '/readyz')
        expect(ready.status).toBe(503)
        expect(ready.body.error.code).toBe('unavailable')
        expect(ready.body.error.message).toMatch(/database/)
        expect(ready.body.error.message).not.toMatch(/redis/)
        // A second round, once the pool has noticed: still 503, not 500.
        await Bun.sleep(Math.max(0, 1500 - (Date.now() - downAt)))
        const again = await env.request('GET', '/api/tasks/')
        expect({ status: again.status, code: again.body?.error?.code }).toEqual({ status: 503, code: 'unavailable' })

        loading = false
        await Promise.all(load)
        expect([...new Set(answers)].filter((a) => a !== 200 && a !== 503)).toEqual([])
        expect(answers).toContain(503)

        await env.pg.start()

        const rows = await env.waitForStatus(ids, ['COMPLETED', 'FAILED', 'CANCELLED'], 40_000)
        expect(rows.map((r) => r.status)).toEqual(ids.map(() => 'COMPLETED'))
        // The API recovers with no restart: its pool reconnects.
        await waitUntil('GET /api/tasks/ to be 200 again', async () => (await env.request('GET', '/api/tasks/')).status === 200, 15_000)
        await waitUntil('/readyz to be 200 again', async () => (await env.request('GET', '/readyz')).status === 200, 15_000)
        const after = await env.createTask({ duration_ms: 0 }, 'after the restart')
        await env.waitForStatus([after], ['COMPLETED'], 10_000)

        await env.expectInvariants([...ids, after])
      },
    ),
    75_000,
  )
})
