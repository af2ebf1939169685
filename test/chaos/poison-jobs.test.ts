import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { fieldsToRecord } from '../../src/domain/messages'
import { guarded, startChaosEnv, waitUntil, type ChaosEnv } from '../helpers/processes'

let env: ChaosEnv
beforeAll(async () => {
  env = await startChaosEnv()
})
afterAll(() => env?.cleanup())

describe('poison entries on the jobs stream', () => {
  test(
    'a malformed job and a job for a missing task are dead-lettered with a reason and acked; work goes on',
    guarded(
      () => env,
      async () => {
        await env.spawnApi()
        await env.spawnWorker()
        const jobs = `${env.prefix}jobs`
        const dead = `${env.prefix}dead-letters`

        // Written by hand, as a buggy producer or an operator might.
        const malformed = await env.rds.xadd(jobs, '*', 'nonsense', 'yes')
        const missing = await env.rds.xadd(jobs, '*', 'task_id', '987654321')

        const entries = await waitUntil('both poison jobs to be dead-lettered', async () => {
          const got = (await env.rds.xrange(dead, '-', '+')) as [string, string[]][]
          return got.length >= 2 && got.map(([, f]) => fieldsToRecord(f))
        })
        expect(entries).toHaveLength(2)
        const byStreamId = new Map(entries.map((e) => [e.stream_id, e]))
        expect(byStreamId.get(malformed!)?.reason).toMatch(/malformed|task_id/i)
        expect(JSON.parse(byStreamId.get(malformed!)!.fields!)).toEqual({ nonsense: 'yes' })
        expect(byStreamId.get(missing!)?.reason).toMatch(/987654321.*(not exist|missing)|(not exist|missing).*987654321/i)

        // Acked, so no worker ever takes them over again, and gone from the stream.
        // A dead letter is written, then its job acked, in one pipeline: the ack may land just after.
        await waitUntil('the poison jobs to be acked', async () => ((await env.rds.xpending(jobs, 'workers')) as [number])[0] === 0, 5000)
        expect(await env.rds.xrange(jobs, '-', '+')).toEqual([])

        // The worker is still healthy.
        const ids = [await env.createTask({ duration_ms: 50 }), await env.createTask({ duration_ms: 50 })]
        const rows = await env.waitForStatus(ids, ['COMPLETED', 'FAILED', 'CANCELLED'], 15_000)
        expect(rows.map((r) => r.status)).toEqual(['COMPLETED', 'COMPLETED'])
        // A job's ack travels with its COMPLETED event, pushed just after the row commits.
        await waitUntil('both jobs to be acked', async () => ((await env.rds.xpending(jobs, 'workers')) as [number])[0] === 0, 5000)
        expect(await env.rds.xlen(dead)).toBe(2)

        await env.expectInvariants(ids)
      },
    ),
    30_000,
  )
})
