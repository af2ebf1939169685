import { join } from 'node:path'
import { expect } from 'bun:test'
import { sql } from 'kysely'
import { Redis as Standalone } from 'ioredis'
import type { Subprocess } from 'bun'
import { createDb, type Db } from '../../src/infra/db'
import type { Redis } from '../../src/infra/redis'
import { startRedisCluster, type RedisClusterServer } from './redis-cluster'
import { eventually } from './poll'
import { freePort, startPostgresCluster, startRedisServer, type PostgresCluster, type RedisServer } from './throwaway'

const repoRoot = join(import.meta.dir, '../..')

type Env = Record<string, string | number>

export interface RoleProcess {
  role: 'api' | 'worker'
  pid: number
  proc: Subprocess<'ignore', 'pipe', 'pipe'>
  /** The exit code (a signal death gives a non-zero code). */
  exited: Promise<number>
  /** Everything the process wrote so far (its logger writes JSON lines to stderr). */
  output(): string
  /** The output's JSON log lines, parsed; other lines are skipped. */
  logs(): Record<string, any>[]
  kill(signal?: NodeJS.Signals): void
  /** Exited without the test having signalled it: a crash. */
  crashed(): boolean
  /** Resolves with the first log line matching, waiting up to timeoutMs. */
  waitForLog(match: (line: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>
}

const alive = new Set<RoleProcess>()
process.on('exit', () => {
  for (const p of alive) p.proc.kill('SIGKILL')
})

/**
 * Runs `bun src/bin/<role>.ts` (or `how.cmd` in `how.cwd`) with only the given
 * env (plus PATH and HOME), output captured.
 */
export function spawnRole(role: 'api' | 'worker', env: Env, how: { cmd?: string[]; cwd?: string } = {}): RoleProcess {
  const proc = Bun.spawn(how.cmd ?? ['bun', `src/bin/${role}.ts`], {
    cwd: how.cwd ?? repoRoot,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...stringify(env) },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  let text = ''
  let signalled = false
  const decoder = new TextDecoder()
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true })
  }
  // Reading both pipes to the end keeps the child from blocking on a full pipe.
  const drained = Promise.all([drain(proc.stdout), drain(proc.stderr)]).catch(() => {})
  const logs = () =>
    text.split('\n').flatMap((l) => {
      if (!l.startsWith('{')) return []
      try {
        return [JSON.parse(l) as Record<string, any>]
      } catch {
        return []
      }
    })
  const rp: RoleProcess = {
    role,
    pid: proc.pid,
    proc,
    exited: proc.exited.then(async (code) => {
      alive.delete(rp)
      await drained
      return code
    }),
    output: () => text,
    logs,
    crashed: () => !signalled && (proc.exitCode !== null || proc.signalCode !== null),
    kill: (signal = 'SIGKILL') => {
      signalled = true
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
    },
    async waitForLog(match, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs
      while (Date.now() < deadline) {
        const found = logs().find(match)
        if (found) return found
        if (proc.exitCode !== null || proc.signalCode !== null) break
        await Bun.sleep(25)
      }
      throw new Error(`${role} (pid ${proc.pid}) never logged the awaited line; output:\n${tail(text)}`)
    },
  }
  alive.add(rp)
  return rp
}

const stringify = (env: Env) => Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]))
const tail = (text: string, lines = 60) => text.split('\n').slice(-lines).join('\n')

/** Polls url until it answers 2xx. */
export async function waitForHttp(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) })
      if (res.ok) return
      last = `HTTP ${res.status}`
    } catch (e) {
      last = (e as Error).message
    }
    await Bun.sleep(50)
  }
  throw new Error(`${url} not answering 2xx after ${timeoutMs} ms (last: ${last})`)
}

/** A child process crashed: ends any wait at once instead of timing out. */
export class CrashError extends Error {}

/** Polls until fn returns a truthy value; the error names what was awaited. */
export function waitUntil<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 15_000, stepMs = 50): Promise<T> {
  return eventually(fn, timeoutMs, stepMs, { what, fatal: (e) => e instanceof CrashError })
}

const terminal = ['COMPLETED', 'FAILED', 'CANCELLED']

/**
 * A whole Taskline of its own for one chaos test: a throwaway Redis and
 * Postgres, the roles as real child processes, and a test-side connection to
 * each server for setup and assertions.
 */
export async function startChaosEnv(opts: { env?: Env; cluster?: boolean } = {}) {
  // A cluster of three masters stands in for the one server; stop() and start() then act on one node.
  const redis: RedisServer = opts.cluster ? await startRedisCluster() : await startRedisServer()
  let pg: PostgresCluster
  try {
    pg = await startPostgresCluster()
  } catch (e) {
    await redis.destroy()
    throw e
  }
  const prefix = 'chaos:'
  const baseEnv: Env = {
    DATABASE_URL: pg.url,
    REDIS_URL: redis.url,
    KEY_PREFIX: prefix,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    DEMO_WORK_MS: 50,
    VISIBILITY_TIMEOUT_MS: 2000,
    SWEEP_INTERVAL_MS: 200,
    RETRY_BASE_MS: 50,
    SHUTDOWN_GRACE_MS: 2000,
    DB_POOL_SIZE: 10,
    // These tests are about failures, not about who may do what.
    AUTH: 'off',
    WORKER_METRICS_PORT: 0, // several workers per machine: each takes a free port
    RATE_LIMIT_PER_SEC: 0,
    ...opts.env,
  }
  const db: Db = createDb(pg.url, 3)
  // Fails fast while our Redis is down, and reconnects by itself afterwards.
  const rds: Redis =
    'client' in redis
      ? (redis as RedisClusterServer).client({ clusterRetryStrategy: () => 100, redisOptions: { maxRetriesPerRequest: 1 } })
      : new Standalone(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 })
  rds.on('error', () => {})
  const children: RoleProcess[] = []
  let apiUrl = ''

  const env = {
    redis,
    pg,
    db,
    rds,
    prefix,
    baseEnv,
    children,
    get api() {
      return apiUrl
    },

    /** Starts an API process and waits until it answers /healthz. */
    async spawnApi(extra: Env = {}) {
      const port = await freePort()
      const child = spawnRole('api', { ...baseEnv, PORT: port, ...extra })
      children.push(child)
      const url = `http://127.0.0.1:${port}`
      await Promise.race([
        waitForHttp(`${url}/healthz`),
        child.exited.then((code) => Promise.reject(new Error(`api exited with ${code} at startup:\n${child.output()}`))),
      ])
      apiUrl ||= url
      return Object.assign(child, { url })
    },

    /** Starts a worker process and waits for its "worker started" line (a loaded machine may need a longer readyTimeoutMs). */
    async spawnWorker(extra: Env = {}, readyTimeoutMs = 15_000) {
      const child = spawnRole('worker', { ...baseEnv, ...extra })
      children.push(child)
      await child.waitForLog((l) => l.msg === 'worker started', readyTimeoutMs)
      return child
    },

    async request(method: string, path: string, body?: unknown, base = apiUrl) {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      })
      const text = await res.text()
      let json: any = null
      try {
        json = JSON.parse(text)
      } catch {}
      return { status: res.status, body: json, text, headers: res.headers }
    },

    /** POSTs a demo task and insists it was accepted. */
    async createTask(payload: Record<string, unknown> = {}, title = 'chaos task'): Promise<number> {
      const res = await env.request('POST', '/api/tasks/', { title, payload })
      if (res.status !== 201) throw new Error(`POST /api/tasks/ answered ${res.status}: ${res.text}`)
      return res.body.id as number
    },

    rows(ids?: number[]) {
      return db
        .selectFrom('tasks')
        .selectAll()
        .$if(ids !== undefined, (qb) => qb.where('id', 'in', ids!.length ? ids! : [-1]))
        .orderBy('id')
        .execute()
    },

    events(taskId: number) {
      return db.selectFrom('task_events').selectAll().where('task_id', '=', taskId).orderBy('seq').execute()
    },

    /** Throws at once if a child died on its own: waiting on it any longer is pointless. */
    expectNoCrash() {
      const dead = children.find((c) => c.crashed())
      if (dead) throw new CrashError(`${dead.role} pid ${dead.pid} crashed (exit ${dead.proc.exitCode}); output:\n${tail(dead.output(), 40)}`)
    },

    /** Waits until every listed task has one of the statuses, reading Postgres. */
    async waitForStatus(ids: number[], statuses: string[], timeoutMs = 30_000) {
      return waitUntil(
        `tasks ${ids.join(',')} to be ${statuses.join('/')}`,
        async () => {
          env.expectNoCrash()
          const rows = await env.rows(ids)
          return rows.length === ids.length && rows.every((r) => statuses.includes(r.status)) && rows
        },
        timeoutMs,
      ).catch(async (e) => {
        if (e instanceof CrashError) throw e
        const rows = await env.rows(ids).catch(() => [])
        throw new Error(`${(e as Error).message}; now: ${JSON.stringify(rows.map((r) => [r.id, r.status, r.attempts, r.error]))}`)
      })
    },

    /**
     * The guarantees every chaos test ends on, read from Postgres: every
     * accepted task is terminal, none has two terminal events, and each task's
     * history is seq 1..N without gaps, N being the row's seq.
     */
    async expectInvariants(accepted: number[]) {
      env.expectNoCrash()
      const rows = await env.rows()
      const ids = rows.map((r) => r.id)
      expect(ids).toEqual(expect.arrayContaining(accepted))
      const notTerminal = rows.filter((r) => !terminal.includes(r.status)).map((r) => [r.id, r.status])
      expect(notTerminal).toEqual([])
      const doubled = await db
        .selectFrom('task_events')
        .select(['task_id', (eb) => eb.fn.countAll<number>().as('n')])
        .where('status', 'in', terminal as any)
        .groupBy('task_id')
        .having((eb) => eb.fn.countAll(), '>', 1)
        .execute()
      expect(doubled).toEqual([])
      const seqs = await sql<{ task_id: number; seqs: number[] }>`
        select task_id, array_agg(seq order by seq) as seqs from task_events group by task_id`.execute(db)
      const byTask = new Map(seqs.rows.map((r) => [Number(r.task_id), r.seqs.map(Number)]))
      for (const r of rows) {
        const got = byTask.get(r.id) ?? []
        expect({ task: r.id, seqs: got }).toEqual({ task: r.id, seqs: Array.from({ length: r.seq }, (_, i) => i + 1) })
      }
    },

    /** Kills every child and removes both servers; safe to call after any failure. */
    async cleanup() {
      for (const c of children) c.kill('SIGKILL')
      await Promise.all(children.map((c) => Promise.race([c.exited, Bun.sleep(5000)])))
      rds.disconnect()
      await db.destroy().catch(() => {})
      await Promise.allSettled([redis.destroy(), pg.destroy()])
    },
  }
  return env
}

export type ChaosEnv = Awaited<ReturnType<typeof startChaosEnv>>

/**
 * Wraps a test body so a failure also prints the tail of every child's output:
 * the children's logs are the only record of what the system did.
 */
export function guarded(getEnv: () => ChaosEnv | undefined, fn: () => Promise<void>) {
  return async () => {
    try {
      await fn()
    } catch (e) {
      for (const c of getEnv()?.children ?? []) console.error(`--- ${c.role} pid ${c.pid} output (tail) ---\n${tail(c.output(), 80)}`)
      throw e
    }
  }
}
