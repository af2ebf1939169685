import type { Config } from '../../src/config'
import { startApiServer, type ApiServer } from '../../src/api/server'
import { startWorker, type Worker } from '../../src/worker/worker'
import { createTestDatabase } from './database'
import { redisUrl, testConfig } from './env'
import { deleteKeys, testRedis, uniquePrefix } from './redis'

type Overrides = Partial<Record<keyof Config, string | number>>

/**
 * The real system in-process: a fresh database, a unique key prefix on the
 * shared Redis, and as many API instances and workers as a test asks for.
 */
export async function startSystem(opts: { apis?: number; workers?: number; env?: Overrides } = {}) {
  const database = await createTestDatabase()
  const prefix = uniquePrefix()
  const config = testConfig({
    DATABASE_URL: database.url,
    REDIS_URL: redisUrl,
    KEY_PREFIX: prefix,
    DEMO_WORK_MS: 50,
    SWEEP_INTERVAL_MS: 200,
    RETRY_BASE_MS: 50,
    SHUTDOWN_GRACE_MS: 2000,
    ...opts.env,
  })
  const apis: ApiServer[] = []
  const workers: Worker[] = []
  for (let i = 0; i < (opts.apis ?? 1); i++) apis.push(await startApiServer(config))
  for (let i = 0; i < (opts.workers ?? 1); i++) workers.push(await startWorker(config))
  const redis = testRedis()
  const api = apis[0]
  return {
    config,
    database,
    db: database.db,
    redis,
    prefix,
    apis,
    workers,
    http: api ? api.url.href.replace(/\/$/, '') : '',
    ws: api ? api.url.href.replace(/^http/, 'ws').replace(/\/$/, '') : '',
    async addWorker(env: Overrides = {}) {
      const w = await startWorker(testConfig({ ...config, ...env } as Overrides))
      workers.push(w)
      return w
    },
    async stop() {
      await Promise.all([...apis, ...workers].map((r) => r.close()))
      await deleteKeys(redis, prefix)
      redis.disconnect()
      await database.drop()
    },
  }
}

export type TestSystem = Awaited<ReturnType<typeof startSystem>>

/** POSTs JSON and returns status and parsed body. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  return { status: res.status, body: (await res.json()) as any, headers: res.headers }
}

export { eventually } from './poll'
