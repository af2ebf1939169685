import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import keySlot from 'cluster-key-slot'
import { startApiServer } from '../src/api/server'
import { streamKeys } from '../src/infra/stream-keys'
import { testConfig } from './helpers/env'
import { startRedisCluster, type RedisClusterServer } from './helpers/redis-cluster'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'
import { connect } from './helpers/ws-client'

/**
 * Taskline on a Redis Cluster of three masters with JOB_SHARDS=3: the same
 * flows as on one server, with the queue spread over the masters. The soak
 * on a cluster, with a master killed and restarted empty, is
 * test/chaos/cluster-soak.test.ts.
 */
let cluster: RedisClusterServer
let sys: TestSystem
beforeAll(async () => {
  cluster = await startRedisCluster()
  // A long lease: a cancel can only reach a quiet handler in time through the sharded cancels channel.
  // A long poll: a task starts promptly only if a job on its shard woke a worker. A long resync:
  // sockets get their events promptly only from the shards' events streams, not from Postgres.
  sys = await startSystem({
    workers: 2,
    env: { REDIS_URL: cluster.url, JOB_SHARDS: 3, DEMO_WORK_MS: 100, VISIBILITY_TIMEOUT_MS: 60_000, WORKER_POLL_MS: 20_000, EVENTS_RESYNC_MS: 60_000 },
  })
}, 60_000)
// Stopping roles whose Redis restarted empty can take longer than a test on a busy machine: the hook gets as long as the start.
afterAll(async () => {
  await sys?.stop()
  await cluster?.destroy()
}, 60_000)

// A request the API leaves hanging fails, so the wait around it goes on polling and, in the end, names what it awaited.
const getTask = async (id: number) => (await (await fetch(`${sys.http}/api/tasks/${id}`, { signal: AbortSignal.timeout(5000) })).json()) as any
const until = (id: number, status: string, ms = 10_000) =>
  eventually(async () => ((t) => t.status === status && t)(await getTask(id)), ms, 25, { what: `task ${id} ${status}` })
/** Fails naming the step if it takes longer than ms: a test's own timeout would not say which step hung. */
const step = <T>(what: string, p: Promise<T>, ms = 20_000): Promise<T> =>
  Promise.race([p, Bun.sleep(ms).then(() => Promise.reject(new Error(`step "${what}" took over ${ms} ms`)))])
/** The master (index into cluster.ports) serving a key's slot, as the cluster was created. */
const nodeOf = (key: string) => cluster.slots.findIndex((ranges) => ranges.some(([a, b]) => keySlot(key) >= a && keySlot(key) <= b))

describe('on a Redis Cluster with JOB_SHARDS=3', () => {
  test("each shard's keys share a slot, and the three shards sit on three different masters", () => {
    const { shards } = streamKeys(sys.prefix, 3)
    for (const s of shards) expect(new Set([keySlot(s.jobs), keySlot(s.events), keySlot(s.cancels)]).size).toBe(1)
    expect(new Set(shards.map((s) => nodeOf(s.jobs)))).toEqual(new Set([0, 1, 2]))
  })

  test('the seed flow: tasks of every shard complete, and a socket sees snapshot, PROCESSING, COMPLETED in seq order', async () => {
    const ids: number[] = []
    for (let i = 0; i < 6; i++) ids.push((await postJson(`${sys.http}/api/tasks/`, { title: `clustered ${i}`, payload: { steps: 2 } })).body.id)
    const sockets = await Promise.all(ids.map((id) => connect(`${sys.ws}/ws/tasks/${id}/`)))
    for (const [i, ws] of sockets.entries()) {
      await ws.waitFor((m) => m.status === 'COMPLETED')
      ws.close()
      expect(ws.messages[0]).toMatchObject({ kind: 'snapshot', task_id: ids[i] })
      const seqs = ws.messages.map((m) => m.seq)
      expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b))
    }
    // The events went out on all three shards' streams, each on its own master.
    const { shards } = streamKeys(sys.prefix, 3)
    expect(new Set(ids.map((id) => streamKeys(sys.prefix, 3).shardOf(id).index))).toEqual(new Set([0, 1, 2]))
    for (const s of shards) {
      const node = sys.redis.duplicate({ port: cluster.ports[nodeOf(s.events)]! })
      expect(await node.xlen(s.events)).toBeGreaterThan(0)
      node.disconnect()
    }
  })

  test('a task on any shard wakes an idle worker at once (the poll is 20 s here)', async () => {
    const keys = streamKeys(sys.prefix, 3)
    const seen = new Set<number>()
    while (seen.size < 3) {
      await eventually(async () => sys.workers.every((w) => w.runner.running.size === 0))
      const { body } = await postJson(`${sys.http}/api/tasks/`, { title: 'wake-up', payload: { duration_ms: 0 } })
      seen.add(keys.shardOf(body.id).index)
      await eventually(async () => (await getTask(body.id)).status === 'COMPLETED', 10_000)
    }
  })

  test('WebSocket replay: after_seq gets the rest of a finished task, and the all-tasks feed gets every shard', async () => {
    const feed = await connect(`${sys.ws}/ws/tasks/`)
    await feed.waitFor((m) => m.kind === 'hello')
    const ids: number[] = []
    for (let i = 0; i < 3; i++) ids.push((await postJson(`${sys.http}/api/tasks/`, { title: `replayed ${i}`, payload: { steps: 3 } })).body.id)
    for (const id of ids) await feed.waitFor((m) => m.kind === 'change' && m.task_id === id && m.status === 'COMPLETED')
    feed.close()
    for (const id of ids) {
      const final = await getTask(id)
      const ws = await connect(`${sys.ws}/ws/tasks/${id}/?after_seq=1`)
      await ws.waitFor((m) => m.seq === final.seq)
      ws.close()
      expect(ws.messages.filter((m) => m.kind !== 'pong').map((m) => m.seq)).toEqual(Array.from({ length: final.seq - 1 }, (_, i) => i + 2))
      const fed = feed.messages.filter((m) => m.kind === 'change' && m.task_id === id).map((m) => m.seq)
      expect(fed).toEqual([...new Set(fed)].sort((a, b) => a - b))
    }
  })

  test('readyz probes the cluster, and the rate limiter counts there', async () => {
    const ready = await fetch(`${sys.http}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({ redis: 'ok' })
    const limited = await startApiServer(testConfig({ ...sys.config, RATE_LIMIT_PER_SEC: 3 } as never))
    try {
      // A burst may straddle a second's boundary: bursts until one shows both sides.
      const burst = () => Promise.all(Array.from({ length: 12 }, () => fetch(new URL('/api/tasks/', limited.url)).then((r) => r.status)))
      await eventually(async () => ((s) => s.includes(200) && s.includes(429))(await burst()))
    } finally {
      await limited.close()
    }
  })

  test('a cancel reaches a quiet running handler at once, whichever shard its task is on', async () => {
    const ids: number[] = []
    for (let i = 0; i < 3; i++) ids.push((await postJson(`${sys.http}/api/tasks`, { title: 'quiet', payload: { duration_ms: 30_000, steps: 1 } })).body.id)
    const running = (id: number) => sys.workers.some((w) => w.runner.running.has(id))
    for (const id of ids) {
      await until(id, 'PROCESSING')
      await eventually(async () => running(id))
    }
    for (const id of ids) {
      expect((await postJson(`${sys.http}/api/tasks/${id}/cancel`, {})).status).toBe(200)
      // The lease keeper would only notice after 20 s: within this wait, only the channel can tell the handler.
      await eventually(async () => !running(id), 5000)
      expect((await getTask(id)).status).toBe('CANCELLED')
    }
  })

  // Last: it adds a worker that looks in Postgres often, which the tests above must not have.
  test('a master SIGKILLed and restarted empty: tasks run meanwhile, sockets catch up from Postgres, cancels arrive again', async () => {
    // While the cluster is down every push is lost: a worker polling Postgres finds the tasks.
    await step('adding a worker', sys.addWorker({ WORKER_POLL_MS: 500 }))
    const feed = await connect(`${sys.ws}/ws/tasks/`)
    await feed.waitFor((m) => m.kind === 'hello')
    await step('stopping master 2', cluster.stop(2))
    // Without its master the whole cluster refuses commands (cluster-require-full-coverage), once the others notice.
    await eventually(async () => (await cluster.state(0)) === 'fail', 20_000, 25, { what: 'the cluster to fail' })
    const ids: number[] = []
    for (let i = 0; i < 6; i++) {
      const res = await step(`POST ${i} during the outage`, postJson(`${sys.http}/api/tasks/`, { title: `during outage ${i}`, payload: { steps: 1 } }))
      expect(res.status).toBe(201)
      ids.push(res.body.id)
    }
    // They finish with the cluster still down: none of their events reached a stream.
    for (const id of ids) await until(id, 'COMPLETED')
    expect(feed.messages.filter((m) => ids.includes(m.task_id))).toEqual([])
    await step('restarting master 2', cluster.start(2))
    // The hub catches each shard up from Postgres once it reads again: every task's last change reaches the feed.
    for (const id of ids) await feed.waitFor((m) => m.kind === 'change' && m.task_id === id && m.status === 'COMPLETED', 20_000)
    feed.close()
    // Without the fast poller, a task on the restarted shard starts only if a job there wakes a worker:
    // the consumer group the restart lost was recreated.
    await step('closing the fast-polling worker', sys.workers.pop()!.close())
    const keys = streamKeys(sys.prefix, 3)
    for (;;) {
      // Idle workers, nothing ready: only this task's own job can start it.
      await eventually(async () => sys.workers.every((w) => w.runner.running.size === 0), 10_000, 25, { what: 'the workers to be idle' })
      const { body } = await step('POST after the restart', postJson(`${sys.http}/api/tasks/`, { title: 'after restart', payload: { steps: 1 } }))
      const shard = keys.shardOf(body.id).index
      await until(body.id, 'COMPLETED', shard === 2 ? 10_000 : 30_000)
      if (shard === 2) break
    }
    const { body } = await step(
      'POST of the quiet task',
      postJson(`${sys.http}/api/tasks`, { title: 'quiet after restart', payload: { duration_ms: 30_000, steps: 1 } }),
    )
    const running = () => sys.workers.some((w) => w.runner.running.has(body.id))
    await eventually(async () => running())
    expect((await postJson(`${sys.http}/api/tasks/${body.id}/cancel`, {})).status).toBe(200)
    await eventually(async () => !running(), 5000)
  }, 90_000)
})
