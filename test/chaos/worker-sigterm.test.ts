import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { guarded, startChaosEnv, type ChaosEnv } from '../helpers/processes'

const TASKS = 20
const DURATION = 3000

let env: ChaosEnv
beforeAll(async () => {
  env = await startChaosEnv({ env: { WORKER_CONCURRENCY: TASKS, VISIBILITY_TIMEOUT_MS: 3000 } })
  await env.spawnApi()
})
afterAll(() => env?.cleanup())

async function loadUp(label: string) {
  const ids: number[] = []
  for (let i = 0; i < TASKS; i++) ids.push(await env.createTask({ duration_ms: DURATION }, `${label} ${i}`))
  return ids
}

describe('worker SIGTERM under load', () => {
  test(
    'with a short grace period it exits 0 quickly, hands every running task back, and another worker finishes them',
    guarded(
      () => env,
      async () => {
        const worker = await env.spawnWorker({ SHUTDOWN_GRACE_MS: 500 })
        const ids = await loadUp('short grace')
        await env.waitForStatus(ids, ['PROCESSING'], 10_000)

        const t0 = Date.now()
        worker.kill('SIGTERM')
        expect(await worker.exited).toBe(0)
        // Grace (500 ms) plus handing back: well before any task could have finished on its own.
        expect(Date.now() - t0).toBeLessThan(2500)

        const rows = await env.rows(ids)
        expect(rows.map((r) => [r.id, r.status, r.attempts, r.locked_by])).toEqual(ids.map((id) => [id, 'PENDING', 0, null]))
        for (const id of ids) {
          const last = (await env.events(id)).at(-1)!
          expect({ id, status: last.status, reason: (last.detail as any)?.reason }).toEqual({
            id,
            status: 'PENDING',
            reason: expect.stringMatching(/shut down/),
          })
        }

        await env.spawnWorker({ SHUTDOWN_GRACE_MS: 500 })
        const done = await env.waitForStatus(ids, ['COMPLETED', 'FAILED', 'CANCELLED'], 20_000)
        // A hand-back does not count as a failed attempt.
        expect(done.map((r) => [r.status, r.attempts])).toEqual(ids.map(() => ['COMPLETED', 1]))

        await env.expectInvariants(ids)
      },
    ),
    45_000,
  )

  test(
    'with a long grace period SIGTERM lets running tasks finish before exiting 0',
    guarded(
      () => env,
      async () => {
        // The previous test's second worker would compete for the tasks: stop it first.
        for (const c of env.children.filter((c) => c.role === 'worker')) {
          c.kill('SIGTERM')
          await c.exited
        }
        const worker = await env.spawnWorker({ SHUTDOWN_GRACE_MS: 15_000 })
        const ids = await loadUp('long grace')
        await env.waitForStatus(ids, ['PROCESSING'], 10_000)

        const t0 = Date.now()
        worker.kill('SIGTERM')
        expect(await worker.exited).toBe(0)
        expect(Date.now() - t0).toBeLessThan(10_000)

        // Finished by the worker that was told to stop, with no one else around.
        const rows = await env.rows(ids)
        expect(rows.map((r) => [r.status, r.attempts])).toEqual(ids.map(() => ['COMPLETED', 1]))

        await env.expectInvariants(ids)
      },
    ),
    45_000,
  )
})
