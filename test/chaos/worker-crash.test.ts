import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { guarded, startChaosEnv, waitUntil, type ChaosEnv } from '../helpers/processes'

let env: ChaosEnv
beforeAll(async () => {
  env = await startChaosEnv({ env: { VISIBILITY_TIMEOUT_MS: 2000 } })
})
afterAll(() => env?.cleanup())

describe('a worker SIGKILLed mid-task', () => {
  test(
    'the task is retaken after its lease expires, runs as attempt 2 and completes once',
    guarded(
      () => env,
      async () => {
        await env.spawnApi()
        const first = await env.spawnWorker()
        const id = await env.createTask({ duration_ms: 5000 })

        // Wait until the first worker really runs it (and has reported some progress), then kill it without warning.
        await waitUntil('first worker to be running the task', async () => {
          const [row] = await env.rows([id])
          return row?.status === 'PROCESSING' && row.progress > 0 && row
        })
        first.kill('SIGKILL')
        expect(await first.exited).not.toBe(0)

        const second = await env.spawnWorker()
        const [done] = await env.waitForStatus([id], ['COMPLETED', 'FAILED'], 25_000)
        expect(done!.status).toBe('COMPLETED')
        expect(done!.attempts).toBe(2)

        const events = await env.events(id)
        // Claims carry their attempt number; progress updates are PROCESSING too but carry none.
        const claims = events.filter((e) => e.status === 'PROCESSING' && (e.detail as any)?.attempt !== undefined)
        expect(claims.map((e) => (e.detail as any).attempt)).toEqual([1, 2])
        const lost = events.find((e) => /worker lost/i.test(String((e.detail as any)?.error ?? '')))
        expect(lost).toBeDefined()
        expect(lost!.status).toBe('PENDING')
        expect(lost!.seq).toBeGreaterThan(claims[0]!.seq)
        expect(lost!.seq).toBeLessThan(claims[1]!.seq)
        expect(events.filter((e) => ['COMPLETED', 'FAILED', 'CANCELLED'].includes(e.status)).map((e) => e.status)).toEqual(['COMPLETED'])
        // Logged before the task ran again, but it reaches the test through a pipe.
        await waitUntil('the recovery log line', async () => second.logs().some((l) => l.msg === 'recovered tasks whose worker stopped'))

        await env.expectInvariants([id])
      },
    ),
    40_000,
  )
})
