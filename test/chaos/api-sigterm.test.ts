import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { connect } from '../helpers/ws-client'
import { guarded, startChaosEnv, type ChaosEnv } from '../helpers/processes'

let env: ChaosEnv
beforeAll(async () => {
  env = await startChaosEnv()
})
afterAll(() => env?.cleanup())

describe('API SIGTERM', () => {
  test(
    'closes every open WebSocket with 1001 (going away) and exits 0',
    guarded(
      () => env,
      async () => {
        const api = await env.spawnApi()
        await env.spawnWorker()
        const id = await env.createTask({ duration_ms: 2000 })
        const ws = api.url.replace(/^http/, 'ws')

        const one = await connect(`${ws}/ws/tasks/${id}`)
        const all = await connect(`${ws}/ws/tasks`)
        await one.waitFor((m) => m.kind === 'snapshot')
        await all.waitFor((m) => m.kind === 'hello')

        api.kill('SIGTERM')
        const closes = await Promise.race([
          Promise.all([one.closed, all.closed]),
          Bun.sleep(5000).then(() => Promise.reject(new Error('sockets still open 5 s after SIGTERM'))),
        ])
        expect(closes.map((c) => c.code)).toEqual([1001, 1001])
        expect(await api.exited).toBe(0)

        // The worker never depended on the API: the task finishes regardless.
        const [row] = await env.waitForStatus([id], ['COMPLETED', 'FAILED', 'CANCELLED'], 15_000)
        expect(row!.status).toBe('COMPLETED')
        await env.expectInvariants([id])
      },
    ),
    30_000,
  )
})
