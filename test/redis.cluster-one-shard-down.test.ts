import { afterAll, beforeAll, expect, test } from 'bun:test'
import { streamKeys } from '../src/infra/stream-keys'
import { startRedisCluster, type RedisClusterServer } from './helpers/redis-cluster'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'
import { connect } from './helpers/ws-client'

/**
 * One master away while the others serve (cluster-require-full-coverage no):
 * the other shards' events keep the hub's position moving, so what the away
 * shard missed must be caught up from where the hub stood when it lost it.
 */
let cluster: RedisClusterServer
let sys: TestSystem
beforeAll(async () => {
  cluster = await startRedisCluster({ fullCoverage: false })
  // Workers find the away shard's tasks in Postgres within half a second; the periodic check against Postgres is
  // put off, so the away tasks' changes reach the feed only by the catch-up this test is about.
  sys = await startSystem({ workers: 1, env: { REDIS_URL: cluster.url, JOB_SHARDS: 3, DEMO_WORK_MS: 0, WORKER_POLL_MS: 500, EVENTS_RESYNC_MS: 60_000 } })
}, 60_000)
afterAll(async () => {
  await sys?.stop()
  await cluster?.destroy()
})

const status = async (id: number) => ((await (await fetch(`${sys.http}/api/tasks/${id}`)).json()) as any).status

test("a shard away when the hub wakes: the feed gets its tasks' changes once it is back, though other shards moved on", async () => {
  const keys = streamKeys(sys.prefix, 3)
  // The master holding shard 2 (each shard on its own master, in order).
  await cluster.stop(2)
  // The feed wakes the hub while shard 2 is away.
  const feed = await connect(`${sys.ws}/ws/tasks/`)
  await feed.waitFor((m) => m.kind === 'hello')
  const ids: number[] = []
  for (let i = 0; i < 3; i++) ids.push((await postJson(`${sys.http}/api/tasks/`, { title: `t${i}` })).body.id)
  const away = ids.filter((id) => keys.shardOf(id).index === 2)
  const served = ids.filter((id) => keys.shardOf(id).index !== 2)
  for (const id of ids) await eventually(async () => (await status(id)) === 'COMPLETED')
  // The served shards' changes arrive and move the hub past the away shard's.
  for (const id of served) await feed.waitFor((m) => m.kind === 'change' && m.task_id === id && m.status === 'COMPLETED')
  expect(feed.messages.filter((m) => away.includes(m.task_id))).toEqual([])
  await cluster.start(2)
  for (const id of away) await feed.waitFor((m) => m.kind === 'change' && m.task_id === id && m.status === 'COMPLETED', 20_000)
  feed.close()
}, 90_000)
