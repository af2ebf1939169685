import type { Cluster } from 'ioredis'
import type { Redis } from '../../../src/infra/redis'
import { type RedisClusterServer, startRedisCluster } from '../../../test/helpers/redis-cluster'
import type { ClusterFigure, Context } from '../context'
import { measureCpu } from '../procfs'
import { type BenchEnv, freePort, postgresBackendPids, type Role, redisServerPids, startApi, startWorker } from '../system'
import { lifecycleLoad, maxId } from './lifecycle'
import { settle } from './settle'
import { checkTasks } from './verify'
import { plural } from '../reference-variants'

/** Masters of the local cluster, and the JOB_SHARDS it is measured with: one stream per master at most. */
const MASTERS = 3
const SHARDS = [1, MASTERS]
const MAX_WORKERS = 3

/** What a failed or interrupted run must still stop: the cluster's roles, the bench's client of it, the cluster. */
let teardown: (() => Promise<void>) | null = null

/** Stops what the cluster phase left running, if anything; run.ts's cleanup calls it (failure, Ctrl-C). */
export async function stopCluster(): Promise<void> {
  const t = teardown
  teardown = null
  await t?.()
}

/** The bench's database and key prefix, with the roles pointed at the cluster. */
function clusterEnv(single: BenchEnv, cluster: RedisClusterServer, shards: number, redis: Redis): BenchEnv {
  return {
    dbName: single.dbName,
    databaseUrl: single.databaseUrl,
    keyPrefix: single.keyPrefix,
    redisUrl: cluster.url,
    jobShards: shards,
    redis,
    token: single.token,
    get pool() {
      return single.pool
    },
    // The cluster goes as a whole (stopCluster); the database with the bench's own cleanup.
    cleanup: async () => {},
  }
}

/**
 * The scaling phase's closed loop once, with the workers given, and the cores
 * each side used: api, the workers together, the redis-server processes given
 * (each also on its own, for the busiest one), the Postgres backends of the
 * bench's database (where they are found; else every postgres process), the
 * load process and the machine. Postgres and the bench's Redis are shared:
 * counting only our own processes keeps other users' work out of the split
 * (it still shows in the machine column).
 */
async function closedLoop(ctx: Context, label: string, concurrency: number, workers: Role[], redisPids: number[] | null) {
  await settle(ctx)
  const api = ctx.api!.pid
  const pids = workers.map((w) => w.pid)
  const nodes = Object.fromEntries((redisPids ?? []).map((pid, i) => [`redis node ${i}`, () => [pid]]))
  const backends = await postgresBackendPids(ctx.env)
  const name = `cluster: ${label}, ${plural(workers.length, 'worker')}`
  const { figure, loadCores, cpu } = await lifecycleLoad(ctx, name, { concurrency }, () => {
    const m = measureCpu({
      api: () => [api],
      worker: () => pids,
      ...(redisPids ? { redis: () => redisPids } : {}),
      ...(backends ? { postgres: () => backends } : {}),
      ...nodes,
    })
    return {
      async stop() {
        // Connections a pool opened during the window count from their start.
        for (const pid of (await postgresBackendPids(ctx.env)) ?? []) if (!backends?.includes(pid)) backends?.push(pid)
        return m.stop()
      },
    }
  })
  const measured = { ...cpu }
  const perNode = Object.keys(nodes).map((k) => measured[k]!)
  for (const k of Object.keys(nodes)) delete measured[k]
  const cores = { ...measured, load: loadCores }
  ctx.results.resources.cpu[name] = cores
  return { figure, cores, redisNodeMax: perNode.length ? Math.max(...perNode) : null }
}

/** 1, 2, then 3 worker processes on the running api; the extra workers are stopped after, ctx.worker stays. */
async function series(ctx: Context, redis: ClusterFigure['redis'], label: string, concurrency: number, redisPids: number[] | null): Promise<ClusterFigure[]> {
  const rows: ClusterFigure[] = []
  const workers: Role[] = [(ctx.worker ??= await startWorker(ctx.env, ctx.port))]
  try {
    for (let n = 1; n <= MAX_WORKERS; n++) {
      if (workers.length < n) workers.push(await startWorker(ctx.env, ctx.port))
      console.log(`cluster: ${label}, ${plural(n, 'worker')}, closed loop c${concurrency}`)
      const { figure, cores, redisNodeMax } = await closedLoop(ctx, label, concurrency, workers, redisPids)
      rows.push({ ...figure, redis, shards: ctx.env.jobShards, workers: n, cpu: cores, redisNodeMax })
    }
  } finally {
    // SIGTERM: each finishes what it runs and hands back the rest; the next settle waits for it.
    await Promise.all(workers.slice(1).map((w) => w.stop()))
  }
  return rows
}

/** Stops the api and worker the phase runs on now; their sweepers must not push tasks to a Redis the next roles do not read. */
async function stopRoles(ctx: Context) {
  const roles = [ctx.worker, ctx.api]
  ctx.worker = null
  ctx.api = null
  await Promise.all(roles.map((r) => r?.stop()))
}

async function connect(cluster: RedisClusterServer): Promise<Cluster> {
  // A command fails on its own; the client reconnects.
  const client = cluster.client({ redisOptions: { maxRetriesPerRequest: 1 } })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the bench could not connect to its Redis Cluster within 20 s')), 20_000)
    client.once('ready', () => {
      clearTimeout(timer)
      resolve()
    })
  })
  return client
}

/**
 * Lifecycle throughput on the bench's Redis, then on a local Redis Cluster of
 * 3 masters with JOB_SHARDS=1 and 3, each with 1, 2 and 3 worker processes, at
 * the largest lifecycle concurrency. The api and workers are restarted with
 * the cluster's REDIS_URL and JOB_SHARDS; the cluster's tasks are checked once
 * they have all finished, before it is torn down. Informational: no target.
 * Leaves no api or worker running (later, verify starts a worker if it needs one).
 */
export async function runCluster(ctx: Context) {
  const concurrency = ctx.opts.lifecycleConcurrencies.at(-1)!
  const single = ctx.env
  const singlePort = ctx.port
  const rows: ClusterFigure[] = []
  ctx.results.cluster = { concurrency, masters: MASTERS, rows }

  ctx.api ??= await startApi(single, ctx.port)
  rows.push(...(await series(ctx, 'single', 'single Redis', concurrency, await redisServerPids(single.redis))))
  // Everything queued on the single Redis finishes there first.
  await settle(ctx)
  await stopRoles(ctx)

  console.log(`cluster: starting a local ${MASTERS}-master Redis Cluster`)
  const cluster = await startRedisCluster({ masters: MASTERS })
  let client: Cluster | null = null
  teardown = async () => {
    await stopRoles(ctx)
    client?.disconnect()
    await cluster.destroy()
  }
  const before = { posted: ctx.posted, socketMissing: ctx.socketMissing, socketDuplicates: ctx.socketDuplicates }
  const notes: string[] = []
  try {
    // The cluster rows' tasks are the rows after this id.
    const firstId = await maxId(ctx)
    client = await connect(cluster)
    const pids = await redisServerPids(client)
    // A port of their own: the single-Redis api's may not be free again yet.
    ctx.port = freePort()
    for (const shards of SHARDS) {
      ctx.env = clusterEnv(single, cluster, shards, client)
      const label = `cluster ${plural(shards, 'shard')}`
      console.log(`cluster: api and workers with REDIS_URL=${cluster.url} JOB_SHARDS=${shards}`)
      ctx.api = await startApi(ctx.env, ctx.port)
      rows.push(...(await series(ctx, 'cluster', label, concurrency, pids)))
      // Its tasks finish on this cluster and these shards, not on the next configuration's.
      await settle(ctx, 30_000).catch((e) => notes.push(`${label}: ${(e as Error).message}`))
      await stopRoles(ctx)
    }
    ctx.results.cluster.integrity = await checkTasks(
      ctx,
      {
        posted: ctx.posted - before.posted,
        socketMissing: ctx.socketMissing - before.socketMissing,
        socketDuplicates: ctx.socketDuplicates - before.socketDuplicates,
      },
      firstId,
      notes,
    )
  } finally {
    await stopCluster()
    ctx.env = single
    ctx.port = singlePort
  }
}
