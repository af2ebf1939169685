import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import pg from 'pg'
import { Redis as Standalone } from 'ioredis'
import { deleteKeys, masters, type Redis } from '../../src/infra/redis'
import { repoRoot, spawnChild, type Child } from './children'

/** The shared services; overridable so the bench can point at other instances. */
export const adminDatabaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'

const unique = () => `${Date.now().toString(36)}_${crypto.randomUUID().slice(0, 8)}`

export async function adminQuery(text: string) {
  const client = new pg.Client({ connectionString: adminDatabaseUrl })
  await client.connect()
  try {
    return await client.query(text)
  } finally {
    await client.end()
  }
}

/** A free TCP port: bind port 0, read it, release it. */
export function freePort(): number {
  const s = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: () => new Response() })
  const port = s.port!
  s.stop(true)
  return port
}

export interface BenchEnv {
  dbName: string
  databaseUrl: string
  keyPrefix: string
  /** What the roles get as REDIS_URL and JOB_SHARDS: the bench's Redis and 1, unless a phase points them elsewhere. */
  redisUrl: string
  jobShards: number
  /** A client of that Redis (or cluster): readiness checks, key cleanup. */
  redis: Redis
  /** Runs a query on the bench database (verification, drain polling). */
  pool: pg.Pool
  /** The API token every load process sends (created after migrating, as a user would). */
  token: string
  cleanup(): Promise<void>
}

/**
 * The token's own requests per second (`token create --rate`): the rate
 * limiter stays on and does its work on every request, but never refuses the
 * bench's load, which is far below this.
 */
export const benchTokenRate = 100_000_000

/**
 * A fresh database migrated by the project's own migrate script (as a user
 * would), an API token made by the project's token command, and a Redis key
 * prefix no one else uses; cleanup() drops and deletes both, and is safe to
 * call twice.
 */
export async function prepareEnvironment(): Promise<BenchEnv> {
  const id = unique()
  const dbName = `taskline_bench_${id}`
  const keyPrefix = `taskline-bench:${id}:`
  const url = new URL(adminDatabaseUrl)
  url.pathname = `/${dbName}`
  const databaseUrl = url.toString()
  const redis = new Standalone(redisUrl, { maxRetriesPerRequest: 1 })
  let pool: pg.Pool | null = null
  let cleaned = false
  const env: BenchEnv = {
    dbName,
    databaseUrl,
    keyPrefix,
    redisUrl,
    jobShards: 1,
    redis,
    token: '',
    get pool() {
      return (pool ??= new pg.Pool({ connectionString: databaseUrl, max: 4 }))
    },
    async cleanup() {
      if (cleaned) return
      cleaned = true
      await pool?.end().catch(() => {})
      await adminQuery(`drop database if exists ${dbName} with (force)`).catch((e) => console.error(`bench: could not drop ${dbName}: ${e.message}`))
      await deleteKeys(redis, keyPrefix).catch((e) => console.error(`bench: could not delete ${keyPrefix}* keys: ${e.message}`))
      redis.disconnect()
    },
  }
  await adminQuery(`create database ${dbName}`)
  const migrate = spawnChild('migrate', ['bun', 'src/bin/migrate.ts'], { DATABASE_URL: databaseUrl })
  if ((await migrate.exited) !== 0) throw new Error(`migrations failed:\n${migrate.tail()}`)
  env.token = await createToken(databaseUrl)
  return env
}

/** `bun src/bin/token.ts create --name bench --rate N`: the token is the one line it prints on stdout. */
async function createToken(databaseUrl: string): Promise<string> {
  const proc = Bun.spawn(['bun', 'src/bin/token.ts', 'create', '--name', 'bench', '--rate', String(benchTokenRate)], {
    cwd: repoRoot,
    env: { ...process.env, DATABASE_URL: databaseUrl },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  const token = out.trim()
  if (code !== 0 || !/^tl_\d+_\S+$/.test(token)) throw new Error(`token create failed (${code}):\n${err.trim()}`)
  return token
}

/**
 * The many-sockets phases hold 10,000 sockets (and their probes) under the
 * bench's one token: a deployment setting for a client with many sockets.
 */
export const benchSocketsPerToken = 20_000

/**
 * The environment both roles get: the shipped configuration. Authentication
 * is required (every load process sends the bench's token), logs are at the
 * default level (info: an access line per request), and the rate limiter runs
 * at its defaults, on every request, with the token's own rate above the
 * offered load (benchTokenRate). Only the per-token socket cap is raised, and
 * only where a user would raise it: for a client with many sockets.
 */
export function roleEnv(env: BenchEnv, port: number): Record<string, string | number | null> {
  return {
    DATABASE_URL: env.databaseUrl,
    REDIS_URL: env.redisUrl,
    JOB_SHARDS: env.jobShards,
    KEY_PREFIX: env.keyPrefix,
    PORT: port,
    HOST: '127.0.0.1',
    WORKER_METRICS_PORT: 0, // several workers per machine: each takes a free port (startWorker names one)
    WS_MAX_CONNECTIONS_PER_TOKEN: benchSocketsPerToken,
    // At their defaults even if the shell running the bench sets them.
    ...Object.fromEntries(shippedDefaults.map((k) => [k, null])),
  }
}

/** The one handler module the bench's workers load beside the built-in types: a task that reads the heap after a forced collection. */
export const benchHandlers = 'scripts/bench/gc-handler.ts'

/** Settings the roles run with at their defaults (src/config.ts): removed from the environment they inherit. */
const shippedDefaults = ['AUTH', 'LOG_LEVEL', 'LOG_FORMAT', 'RATE_LIMIT_PER_SEC', 'WS_MAX_CONNECTIONS', 'MAX_BODY_BYTES', 'CORS_ORIGINS', 'HANDLERS']

/** The report header's line on what was measured. */
export const configurationMeasured =
  `the shipped configuration: ${shippedDefaults.slice(0, 4).join(', ')} at their defaults (authentication required: every request and socket` +
  ` carries the bench's token; info logs; the rate limiter on, at the token's own ${benchTokenRate.toLocaleString('en-US')}/s, so it never refuses);` +
  ` WS_MAX_CONNECTIONS_PER_TOKEN=${benchSocketsPerToken.toLocaleString('en-US')} for the many-sockets phases; the workers load one handler module,` +
  ` ${benchHandlers} (HANDLERS), whose task the backlog phase sends to read the heap after a collection`

export interface Role {
  child: Child
  pid: number
  stop(): Promise<void>
}

/** Starts `bun src/bin/api.ts` (bunArgs before the script: a profiler) and waits until /readyz says Postgres and Redis answer. */
export async function startApi(env: BenchEnv, port: number, bunArgs: string[] = []): Promise<Role & { url: string }> {
  const child = spawnChild('api', ['bun', ...bunArgs, 'src/bin/api.ts'], roleEnv(env, port))
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.proc.exitCode !== null) throw new Error(`api exited with ${child.proc.exitCode}:\n${child.tail()}`)
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) break
    if (Date.now() > deadline) throw new Error(`api not ready within 20 s:\n${child.tail()}`)
    await Bun.sleep(50)
  }
  return { child, pid: child.pid, url, stop: async () => void (await child.stop('SIGTERM', 15_000)) }
}

/** Local TCP ports of a process's sockets: its fds name socket inodes, /proc/net/tcp maps inodes to ports. */
function localPorts(pid: number): Set<number> {
  const inodes = new Set<string>()
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkOr(`/proc/${pid}/fd/${fd}`))
      if (m) inodes.add(m[1]!)
    }
  } catch {
    return new Set()
  }
  const ports = new Set<number>()
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileOr(table).split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/)
      if (cols[9] && inodes.has(cols[9])) ports.add(parseInt(cols[1]!.split(':')[1]!, 16))
    }
  }
  return ports
}

const readlinkOr = (p: string) => {
  try {
    return readlinkSync(p)
  } catch {
    return ''
  }
}
const readFileOr = (p: string) => {
  try {
    return readFileSync(p, 'utf8')
  } catch {
    return ''
  }
}

/**
 * How many of the process's Redis connections are waiting in XREADGROUP
 * (CLIENT LIST shows each one's last command), over every master of a cluster.
 */
async function blockedInXreadgroup(redis: Redis, pid: number): Promise<number> {
  const ports = localPorts(pid)
  let blocked = 0
  for (const node of masters(redis)) {
    const clients = (await node.client('LIST')) as string
    for (const line of clients.split('\n')) {
      const port = /\baddr=[^ ]*:(\d+) /.exec(line)?.[1]
      if (port !== undefined && ports.has(Number(port)) && / cmd=xreadgroup\b/.test(line)) blocked++
    }
  }
  return blocked
}

/**
 * The redis-server processes behind a client (INFO's process_id of every
 * master), where they run on this machine; null for a server elsewhere.
 */
export async function redisServerPids(redis: Redis): Promise<number[] | null> {
  const pids: number[] = []
  for (const node of masters(redis)) {
    const pid = Number(/^process_id:(\d+)/m.exec(await node.info('server'))?.[1])
    if (readFileOr(`/proc/${pid}/comm`).trim() !== 'redis-server') return null
    pids.push(pid)
  }
  return pids
}

/**
 * The Postgres backends serving the bench's database, where they run on this
 * machine (null otherwise): its own share of a Postgres other users share.
 * Background processes (WAL writer, checkpointer) serve everyone and are left out.
 */
export async function postgresBackendPids(env: BenchEnv): Promise<number[] | null> {
  const { rows } = await env.pool.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database()')
  const pids = rows.map((r) => Number(r.pid))
  return pids.every((pid) => readFileOr(`/proc/${pid}/comm`).trim() === 'postgres') ? pids : null
}

/**
 * Starts `bun src/bin/worker.ts`, its /metrics on a port of its own
 * (metricsUrl). Redis lists a consumer only once it was handed a job, so
 * readiness is its own connections blocked in XREADGROUP, one per jobs stream
 * (shard), on whichever node holds it (Redis is shared: matched by the
 * connection's port, not its name). A worker started on a backlog blocks only
 * once it has worked through it: `until: 'metrics'` returns as soon as its
 * /metrics answers (bound before it reads any job).
 */
export async function startWorker(
  env: BenchEnv,
  port: number,
  onSpawn?: (pid: number) => void,
  until: 'reading' | 'metrics' = 'reading',
  bunArgs: string[] = [],
): Promise<Role & { metricsUrl: string }> {
  const metricsPort = freePort()
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`
  const child = spawnChild('worker', ['bun', ...bunArgs, 'src/bin/worker.ts'], {
    ...roleEnv(env, port),
    WORKER_METRICS_PORT: metricsPort,
    HANDLERS: benchHandlers,
  })
  onSpawn?.(child.pid)
  const deadline = Date.now() + 20_000
  const answers = () =>
    fetch(metricsUrl).then(
      (r) => r.ok,
      () => false,
    )
  for (;;) {
    if (child.proc.exitCode !== null) throw new Error(`worker exited with ${child.proc.exitCode}:\n${child.tail()}`)
    if (until === 'metrics' ? await answers() : (await blockedInXreadgroup(env.redis, child.pid)) >= env.jobShards) break
    if (Date.now() > deadline) throw new Error(`worker not reading jobs within 20 s:\n${child.tail()}`)
    await Bun.sleep(25)
  }
  return { child, pid: child.pid, metricsUrl, stop: async () => void (await child.stop('SIGTERM', 15_000)) }
}
