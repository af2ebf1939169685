import { afterEach, describe, expect, test } from 'bun:test'
import { sql } from 'kysely'
import { streamKeys } from '../src/infra/stream-keys'
import { insertTaskRows } from './helpers/database'
import { deleteKeys } from './helpers/redis'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'

let sys: TestSystem
afterEach(() => sys?.stop())

const status = async (id: number) => await sys.db.selectFrom('tasks').select(['status', 'attempts', 'error']).where('id', '=', id).executeTakeFirstOrThrow()
const statuses = async (id: number) =>
  (await sys.db.selectFrom('task_events').select('status').where('task_id', '=', id).orderBy('seq').execute()).map((r) => r.status)

describe('recovery driven by Postgres, not by what Redis remembers', () => {
  test('a duplicate job for the same task runs it once, even with two workers racing', async () => {
    sys = await startSystem({ workers: 0 })
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'dup', payload: { duration_ms: 20, steps: 1 } })
    const keys = streamKeys(sys.prefix)
    for (let i = 0; i < 4; i++) await sys.redis.xadd(keys.shards[0]!.jobs, '*', 'task_id', String(body.id))
    await sys.addWorker()
    await sys.addWorker()
    await eventually(async () => (await status(body.id)).status === 'COMPLETED')
    await Bun.sleep(200) // let any late duplicate be handled
    expect(await status(body.id)).toMatchObject({ attempts: 1 })
    expect(await statuses(body.id)).toEqual(['PENDING', 'PROCESSING', 'COMPLETED'])
    // every copy was acknowledged and removed
    await eventually(async () => (await sys.redis.xlen(keys.shards[0]!.jobs)) === 0)
    const pending = (await sys.redis.xpending(keys.shards[0]!.jobs, keys.workersGroup)) as [number, ...unknown[]]
    expect(pending[0]).toBe(0)
  })

  test('a task accepted but never put on the stream (outbox) is enqueued by the sweeper', async () => {
    sys = await startSystem({ workers: 1 })
    const [row] = await insertTaskRows(sys.db, [{ title: 'stored while redis was away', payload: JSON.stringify({ duration_ms: 0 }), enqueued_at: null }])
    await eventually(async () => (await status(row!.id)).status === 'COMPLETED')
  })

  test('a PROCESSING task whose lease expired (its worker died) runs again as a new attempt', async () => {
    sys = await startSystem({ workers: 1 })
    const [row] = await insertTaskRows(sys.db, [
      {
        title: 'orphan',
        status: 'PROCESSING',
        attempts: 1,
        payload: JSON.stringify({ duration_ms: 0 }),
        locked_by: 'dead-worker',
        locked_until: sql<Date>`now() - interval '1 second'`,
      },
    ])
    await eventually(async () => (await status(row!.id)).status === 'COMPLETED')
    expect(await status(row!.id)).toMatchObject({ attempts: 2 })
    const history = await sys.db.selectFrom('task_events').selectAll().where('task_id', '=', row!.id).orderBy('seq').execute()
    expect(history.map((e) => e.status)).toEqual(['PROCESSING', 'PENDING', 'PROCESSING', 'COMPLETED'])
    expect(JSON.stringify(history[1]!.detail)).toContain('worker lost')
  })

  test('an expired lease on the last attempt FAILs the task instead of running it again', async () => {
    sys = await startSystem({ workers: 1 })
    const [row] = await insertTaskRows(sys.db, [
      {
        title: 'orphan, out of attempts',
        status: 'PROCESSING',
        attempts: 3,
        max_attempts: 3,
        locked_by: 'dead-worker',
        locked_until: sql<Date>`now() - interval '1 second'`,
      },
    ])
    await eventually(async () => (await status(row!.id)).status === 'FAILED')
    expect((await status(row!.id)).error).toContain('worker lost')
  })

  test('a live worker keeps extending its lease, so a slow task is not taken for a dead one', async () => {
    sys = await startSystem({ workers: 1, env: { VISIBILITY_TIMEOUT_MS: 600 } })
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'slow', payload: { duration_ms: 2000, steps: 2 } })
    await eventually(async () => (await status(body.id)).status === 'COMPLETED', 8000)
    expect(await status(body.id)).toMatchObject({ attempts: 1 })
    expect(await statuses(body.id)).toEqual(['PENDING', 'PROCESSING', 'PROCESSING', 'COMPLETED'])
  })

  test('a cancel the worker never heard of as an event still stops the handler at the next lease renewal', async () => {
    sys = await startSystem({ workers: 1, env: { VISIBILITY_TIMEOUT_MS: 900 } })
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'silent cancel', payload: { duration_ms: 20_000, steps: 200 } })
    await eventually(async () => sys.workers[0]!.runner.running.has(body.id))
    await sys.db.updateTable('tasks').set({ status: 'CANCELLED', locked_by: null }).where('id', '=', body.id).execute()
    await eventually(async () => !sys.workers[0]!.runner.running.has(body.id), 3000)
  })

  test('a backlog accepted before the first worker starts is queued once, not again by the sweeper', async () => {
    sys = await startSystem({ workers: 0 })
    const keys = streamKeys(sys.prefix)
    const ids: number[] = []
    for (let i = 0; i < 30; i++) ids.push((await postJson(`${sys.http}/api/tasks`, { title: `b${i}`, payload: { duration_ms: 0 } })).body.id)
    const added = async () => (await sys.redis.call('XINFO', 'STREAM', keys.shards[0]!.jobs)) as unknown[]
    const entriesAdded = async () => {
      const info = await added()
      return Number(info[info.indexOf('entries-added') + 1])
    }
    // A create is answered once Postgres has it; its job follows without the client waiting.
    await eventually(async () => (await entriesAdded()) === 30)
    await sys.addWorker()
    for (const id of ids) await eventually(async () => (await status(id)).status === 'COMPLETED')
    await Bun.sleep(600) // a few more sweeps
    expect(await entriesAdded()).toBe(30)
  })

  test('after Redis loses everything, pending tasks are enqueued again and complete', async () => {
    sys = await startSystem({ workers: 0 })
    const ids: number[] = []
    for (let i = 0; i < 3; i++) ids.push((await postJson(`${sys.http}/api/tasks`, { title: `t${i}`, payload: { duration_ms: 0 } })).body.id)
    await deleteKeys(sys.redis, sys.prefix) // what a restart of a Redis that keeps nothing on disk does
    await sys.addWorker()
    for (const id of ids) await eventually(async () => (await status(id)).status === 'COMPLETED')
    for (const id of ids) expect(await status(id)).toMatchObject({ attempts: 1 })
  })
})

describe('jobs only wake workers: Postgres says what is ready', () => {
  test('a ready task whose job never reached Redis is found by a worker looking on its own', async () => {
    sys = await startSystem({ workers: 1, env: { WORKER_POLL_MS: 200 } })
    // The worker has looked and found nothing more: it is waiting for a job when the task appears.
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'first', payload: { duration_ms: 0 } })
    await eventually(async () => (await status(body.id)).status === 'COMPLETED')
    // A crash between the commit and the XADD leaves exactly this behind: ready, and no job.
    const [row] = await insertTaskRows(sys.db, [
      { title: 'ready, never announced', payload: JSON.stringify({ duration_ms: 0 }), enqueued_at: sql<Date>`now()` },
    ])
    await eventually(async () => (await status(row!.id)).status === 'COMPLETED', 15_000)
    expect(await sys.redis.xlen(streamKeys(sys.prefix).shards[0]!.jobs)).toBe(0)
  })
})
