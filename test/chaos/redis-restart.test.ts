import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { streamKeys } from '../../src/infra/stream-keys'
import { guarded, startChaosEnv, waitUntil, type ChaosEnv } from '../helpers/processes'

let env: ChaosEnv
beforeAll(async () => {
  env = await startChaosEnv({ env: { VISIBILITY_TIMEOUT_MS: 2000, WORKER_CONCURRENCY: 3 } })
})
afterAll(() => env?.cleanup())

// A log line "about the outage": anything naming Redis or its connection trouble.
const aboutOutage = (l: Record<string, any>) => /redis|ECONNREFUSED|connection|stream isn't writeable|NOGROUP|consumer group/i.test(JSON.stringify(l))

describe('Redis restarted empty mid-run', () => {
  test(
    'every task still completes; API and worker reconnect by themselves; outage logs stay bounded',
    guarded(
      () => env,
      async () => {
        const api = await env.spawnApi()
        const worker = await env.spawnWorker()
        // Concurrency 3 with 9 tasks: some are running and some only queued on the stream when Redis loses everything.
        const ids: number[] = []
        for (let i = 0; i < 9; i++) ids.push(await env.createTask({ duration_ms: 1500 }, `redis-restart ${i}`))
        await waitUntil('some tasks running and some still pending', async () => {
          const rows = await env.rows(ids)
          return rows.some((r) => r.status === 'PROCESSING') && rows.some((r) => r.status === 'PENDING')
        })

        const before = { worker: worker.logs().length, api: api.logs().length }
        // Down long enough for a reconnect loop to retry many times: one log line per retry would show.
        await env.redis.stop()
        await Bun.sleep(3000)
        await env.redis.start()

        const rows = await env.waitForStatus(ids, ['COMPLETED', 'FAILED', 'CANCELLED'], 40_000)
        expect(rows.map((r) => r.status)).toEqual(ids.map(() => 'COMPLETED'))

        // The worker recreates its consumer group on the empty Redis at its next read, which may come
        // after the last task finished (a full worker does not read), and its log line travels a pipe.
        await waitUntil('the worker to recreate its consumer group', async () => {
          const groups = (await env.rds.xinfo('GROUPS', streamKeys(env.prefix).shards[0]!.jobs).catch(() => [])) as unknown[]
          return groups.length === 1 && worker.logs().some((l) => /redis lost its data/.test(l.msg))
        })

        // The API serves again by itself, Redis included.
        const ready = await waitUntil('API /readyz to be 200 again', async () => {
          const res = await env.request('GET', '/readyz')
          return res.status === 200 && res
        })
        expect(ready.body).toMatchObject({ status: 'ready', redis: 'ok' })
        const after = await env.createTask({ duration_ms: 0 }, 'after the outage')
        await env.waitForStatus([after], ['COMPLETED'], 10_000)

        await env.expectInvariants([...ids, after])

        // Per outage: one "unavailable" and one "reconnected" line per connection, a failed
        // sweep, the group recreated, the re-enqueue, and at most one line per task caught
        // mid-outage. Nothing here may scale with how long Redis stays down.
        const msgs = (lines: Record<string, any>[]) => lines.map((l) => `${l.level} ${l.msg}${l.connection ? ` (${l.connection})` : ''}`)
        const workerOutage = msgs(worker.logs().slice(before.worker).filter(aboutOutage))
        const apiOutage = msgs(api.logs().slice(before.api).filter(aboutOutage))
        // On failure the diff shows the offending lines.
        expect({
          worker: workerOutage.length <= 16 ? 'bounded' : workerOutage,
          api: apiOutage.length <= 10 ? 'bounded' : apiOutage,
        }).toEqual({ worker: 'bounded', api: 'bounded' })
      },
    ),
    75_000,
  )
})
