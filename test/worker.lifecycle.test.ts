import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { connect } from './helpers/ws-client'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'
import { streamKeys } from '../src/infra/stream-keys'
import { fieldsToEvent } from '../src/domain/task-events/task-event'
import { sql } from 'kysely'

let sys: TestSystem
beforeAll(async () => {
  sys = await startSystem({ workers: 1, env: { VISIBILITY_TIMEOUT_MS: 30_000 } })
})
afterAll(() => sys.stop())

const getTask = async (id: number) => (await (await fetch(`${sys.http}/api/tasks/${id}`)).json()) as any
const events = async (id: number) => ((await (await fetch(`${sys.http}/api/tasks/${id}/events`)).json()) as any).results as any[]
const until = (id: number, status: string) => eventually(async () => ((t) => t.status === status && t)(await getTask(id)))

describe('worker: outcomes, retries, cancellation', () => {
  test('a handler that throws is retried with backoff, then the task FAILs with the error stored', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'doomed', payload: { fail: true, duration_ms: 0 }, max_attempts: 3 })
    const failed = await until(body.id, 'FAILED')
    expect(failed).toMatchObject({ attempts: 3, error: 'demo task failed as asked (payload.fail)' })
    expect(failed.finished_at).not.toBeNull()
    const history = await events(body.id)
    expect(history.map((e) => e.status)).toEqual(['PENDING', 'PROCESSING', 'PENDING', 'PROCESSING', 'PENDING', 'PROCESSING', 'FAILED'])
    expect(history[2].detail).toMatchObject({ error: failed.error, attempt: 1 })
    expect(history[2].detail.retry_in_ms).toBeGreaterThanOrEqual(25)
    // the second retry waits longer than the first (exponential, jittered between half and the whole step)
    const gap = (i: number) => Date.parse(history[i + 1].at) - Date.parse(history[i].at)
    expect(gap(2)).toBeGreaterThanOrEqual(history[2].detail.retry_in_ms)
    expect(gap(4)).toBeGreaterThanOrEqual(history[4].detail.retry_in_ms)
  })

  test('max_attempts 1 fails at once, and retry gives it a fresh run', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'once', payload: { fail: true, duration_ms: 0 }, max_attempts: 1 })
    expect(await until(body.id, 'FAILED')).toMatchObject({ attempts: 1 })
    const retried = await postJson(`${sys.http}/api/tasks/${body.id}/retry`, {})
    expect(retried.status).toBe(200)
    expect(retried.body).toMatchObject({ status: 'PENDING', attempts: 0, error: null })
    expect(await until(body.id, 'FAILED')).toMatchObject({ attempts: 1 })
    expect((await events(body.id)).filter((e) => e.status === 'FAILED')).toHaveLength(2)
  })

  test('cancel stops a running demo task through its AbortSignal', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'long', payload: { duration_ms: 10_000, steps: 100 } })
    await eventually(async () => (await getTask(body.id)).progress > 0)
    const res = await postJson(`${sys.http}/api/tasks/${body.id}/cancel/`, {})
    expect(res.status).toBe(200)
    expect(res.body.status).toBe('CANCELLED')
    // the handler stops: the worker frees the slot long before the 10 s run would end
    await eventually(async () => !sys.workers[0]!.runner.running.has(body.id), 2000)
    await Bun.sleep(300)
    const after = await getTask(body.id)
    expect(after).toMatchObject({ status: 'CANCELLED', seq: res.body.seq })
    const history = await events(body.id)
    expect(history.at(-1).status).toBe('CANCELLED')
    expect(history.filter((e) => e.status === 'CANCELLED')).toHaveLength(1)
  })

  test('a cancel reaches a handler that reports no progress within moments, long before its lease is renewed', async () => {
    // One step: the handler never writes progress, so only the cancels channel can tell it (the lease keeper ticks every 10 s here).
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'quiet', payload: { duration_ms: 20_000, steps: 1 } })
    await until(body.id, 'PROCESSING')
    await eventually(async () => sys.workers[0]!.runner.running.has(body.id))
    expect((await postJson(`${sys.http}/api/tasks/${body.id}/cancel`, {})).status).toBe(200)
    await eventually(async () => !sys.workers[0]!.runner.running.has(body.id), 1500)
  })

  test('a cancelled task can be retried and then completes', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'again', payload: { duration_ms: 5000, steps: 50 } })
    await until(body.id, 'PROCESSING')
    await postJson(`${sys.http}/api/tasks/${body.id}/cancel`, {})
    await eventually(async () => !sys.workers[0]!.runner.running.has(body.id), 2000)
    await sys.db
      .updateTable('tasks')
      .set({ payload: JSON.stringify({ duration_ms: 10 }) })
      .where('id', '=', body.id)
      .execute()
    expect((await postJson(`${sys.http}/api/tasks/${body.id}/retry`, {})).status).toBe(200)
    expect(await until(body.id, 'COMPLETED')).toMatchObject({ attempts: 1, progress: 1 })
  })

  test('deleting a running task cancels it first: subscribers see CANCELLED, then a deleted message', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'doomed to delete', payload: { duration_ms: 10_000, steps: 100 } })
    await until(body.id, 'PROCESSING')
    const ws = await connect(`${sys.ws}/ws/tasks/${body.id}`)
    // A subscriber is one that has its snapshot: a delete before that is answered with 4404 instead.
    await ws.waitFor((m) => m.kind === 'snapshot')
    expect((await fetch(`${sys.http}/api/tasks/${body.id}/`, { method: 'DELETE' })).status).toBe(204)
    const deleted = await ws.waitFor((m) => m.deleted === true)
    ws.close()
    expect(ws.messages.some((m) => m.status === 'CANCELLED' && !m.deleted)).toBe(true)
    expect(deleted.seq).toBeGreaterThan(ws.messages.find((m) => m.status === 'CANCELLED').seq)
    await eventually(async () => !sys.workers[0]!.runner.running.has(body.id), 2000)
    expect((await fetch(`${sys.http}/api/tasks/${body.id}`)).status).toBe(404)
  })

  test('an attempt past its timeout_ms is aborted and counts as a failed attempt', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'slow', payload: { duration_ms: 10_000 }, timeout_ms: 100, max_attempts: 2 })
    expect(body.timeout_ms).toBe(100)
    const failed = await until(body.id, 'FAILED')
    expect(failed).toMatchObject({ attempts: 2, error: 'timed out after 100 ms' })
    // the slot is freed right after the outcome is written, not 10 s later
    await eventually(async () => !sys.workers[0]!.runner.running.has(body.id), 1000)
  })

  test('a handler result is stored on the task and in the COMPLETED event', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'result', payload: { duration_ms: 0 } })
    const done = await until(body.id, 'COMPLETED')
    expect(done.result).toEqual({ steps: 1, duration_ms: 0 })
    expect((await events(body.id)).at(-1).detail).toEqual({ result: done.result })
  })

  test("the events stream itself carries each task's changes in seq order, with none missing, and every job is acknowledged, when claims, progress, failures and completions share batches", async () => {
    // The hub would repair a gap or swap from Postgres, so look at the stream the worker writes, not at a socket.
    const posted = await Promise.all([
      ...Array.from({ length: 40 }, () => postJson(`${sys.http}/api/tasks`, { title: 'fast', payload: { duration_ms: 0 } })),
      ...Array.from({ length: 5 }, () => postJson(`${sys.http}/api/tasks`, { title: 'steps', payload: { duration_ms: 20, steps: 4 } })),
      ...Array.from({ length: 5 }, () => postJson(`${sys.http}/api/tasks`, { title: 'fails', payload: { fail: true, duration_ms: 0 }, max_attempts: 2 })),
    ])
    const ids = posted.map((p) => p.body.id as number)
    const done = new Set(['COMPLETED', 'FAILED'])
    await eventually(async () => (await Promise.all(ids.map(getTask))).every((t) => done.has(t.status)), 10_000)
    const final = new Map((await Promise.all(ids.map(getTask))).map((t) => [t.id as number, t.seq as number]))
    const seqs = new Map<number, number[]>()
    const entries = (await sys.redis.xrange(streamKeys(sys.prefix).shards[0]!.events, '-', '+')) as [string, string[]][]
    for (const [, fields] of entries) {
      const e = fieldsToEvent(fields)!
      if (!final.has(e.taskId)) continue
      seqs.set(e.taskId, [...(seqs.get(e.taskId) ?? []), e.seq])
      // Each entry carries when its producer saw it committed: after its statement began (`at`), before now.
      expect(e.storedAt).toBeGreaterThanOrEqual(Date.parse(JSON.parse(e.json).at))
      expect(e.storedAt).toBeLessThanOrEqual(Date.now())
    }
    for (const [id, seq] of final) expect({ id, seqs: seqs.get(id) }).toEqual({ id, seqs: Array.from({ length: seq }, (_, i) => i + 1) })
    // Every job was acknowledged and deleted with its outcome, failures included (the visibility timeout is 30 s here, so no redelivery hides a lost ack).
    const jobs = streamKeys(sys.prefix).shards[0]!.jobs
    await eventually(async () => (await sys.redis.xlen(jobs)) === 0, 5000)
    expect(((await sys.redis.xpending(jobs, 'workers')) as [number])[0]).toBe(0)
  })
})

describe('worker: waiting for work', () => {
  test('an idle worker waits for a job or its poll: it does not look in Postgres in a loop', async () => {
    // Woken by a job once, as every worker is: what woke it must be forgotten once it has looked.
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'one job', payload: { duration_ms: 0 } })
    await until(body.id, 'COMPLETED')
    await eventually(async () => sys.workers.every((w) => w.runner.running.size === 0))
    const commits = async () => {
      const { rows } = await sql<{ n: string }>`select xact_commit as n from pg_stat_database where datname = current_database()`.execute(sys.db)
      return Number(rows[0]!.n)
    }
    // Statistics reach pg_stat_database within a second or so; two seconds' worth of idling is read.
    const before = await commits()
    await Bun.sleep(3000)
    // Its periodic work (sweeper, heartbeat, scheduler) and this query cost a few transactions a second; a pump
    // that never waits costs thousands.
    const idle = (await commits()) - before
    expect(idle).toBeLessThan(500)
  })
})
