import { afterAll, beforeAll } from 'bun:test'
import type { Server } from 'bun'
import { createApp, type AppDeps } from '../../src/api/app'
import { createLogger, type Logger } from '../../src/infra/logger'
import { streamKeys } from '../../src/infra/stream-keys'
import type { Db } from '../../src/infra/db'
import { createTestDatabase, type TestDatabase } from './database'
import { deleteKeys, testRedis, uniquePrefix } from './redis'

/**
 * The Hono app on a listening Bun server (so each request has a real peer
 * address), with real Postgres and Redis and the auth a test builds from the
 * database. Registers its own beforeAll/afterAll, like appUnderTest.
 */
export function servedApp(o: { auth: (db: Db) => AppDeps['auth']; logger?: Logger }) {
  const redis = testRedis()
  const prefix = uniquePrefix()
  let database: TestDatabase
  let server: Server<unknown>
  beforeAll(async () => {
    database = await createTestDatabase()
    const app = createApp({
      db: database.db,
      redis,
      keys: streamKeys(prefix),
      eventsMaxLen: 1000,
      logger: o.logger ?? createLogger('silent'),
      auth: o.auth(database.db),
    })
    // Sockets are accepted and closed at once: these tests look at the handshake, not the session.
    server = Bun.serve<unknown>({ port: 0, hostname: '127.0.0.1', fetch: app.fetch, websocket: { open: (ws) => ws.close(), message: () => {} } })
  })
  afterAll(async () => {
    await server.stop(true)
    await deleteKeys(redis, prefix)
    redis.disconnect()
    await database.drop()
  })
  return {
    get db() {
      return database.db
    },
    get url() {
      return server.url.href.replace(/\/$/, '')
    },
  }
}
