import { afterAll, beforeAll, expect } from 'bun:test'
import { createApp, type AppDeps } from '../../src/api/app'
import { createLogger } from '../../src/infra/logger'
import { streamKeys } from '../../src/infra/stream-keys'
import { createTestDatabase, type TestDatabase } from './database'
import { deleteKeys, testRedis, uniquePrefix } from './redis'

/**
 * The Hono app with real deps and no listening server (app.request), on a
 * fresh database and key prefix that are removed after the file. Registers
 * its own beforeAll/afterAll. `extra` adds or replaces deps (publicUrl, say).
 */
export function appUnderTest(extra: Partial<AppDeps> = {}) {
  const redis = testRedis()
  const prefix = uniquePrefix()
  const keys = streamKeys(prefix)
  let database: TestDatabase
  let app: ReturnType<typeof createApp>
  beforeAll(async () => {
    database = await createTestDatabase()
    app = createApp({ db: database.db, redis, keys, eventsMaxLen: 1000, logger: createLogger('silent'), ...extra })
  })
  afterAll(async () => {
    await deleteKeys(redis, prefix)
    redis.disconnect()
    await database.drop()
  })
  return {
    redis,
    prefix,
    keys,
    get db() {
      return database.db
    },
    get app() {
      return app
    },
    /** How many tasks the database holds: a refused request must leave it as it was. */
    async countTasks() {
      const { n } = await database.db
        .selectFrom('tasks')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
      return Number(n)
    },
    /** Calls the app and checks what every response promises: JSON (unless empty), never a stack trace. */
    async call(path: string, init: RequestInit = {}) {
      const res = await app.request(path, init)
      const text = await res.text()
      expect(text).not.toMatch(/\bat .+:\d+:\d+|"stack"|node_modules/)
      if (res.status !== 204) expect(res.headers.get('content-type')).toStartWith('application/json')
      return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers }
    },
  }
}
