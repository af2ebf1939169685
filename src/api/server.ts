import type { Config } from '../config'
import { createDb } from '../infra/db'
import { createLogger, settleAll, type Logger } from '../infra/logger'
import { createRedis, waitForRedis } from '../infra/redis'
import { streamKeys } from '../infra/stream-keys'
import { createApp } from './app'
import { createEventHub } from './ws/event-hub'
import { closeCodes, createSocketHandlers } from './ws/socket-session'

/** The API role: HTTP and WebSockets on one port, fed by the events stream. */
export async function startApiServer(config: Config, logger: Logger = createLogger(config.LOG_LEVEL, { role: 'api' })) {
  const db = createDb(config.DATABASE_URL, config.DB_POOL_SIZE)
  const redis = createRedis(config.REDIS_URL, 'producer', logger)
  const hub = createEventHub({ redis: createRedis(config.REDIS_URL, 'blocking', logger), db, keys: streamKeys(config.KEY_PREFIX), logger, resyncMs: config.EVENTS_RESYNC_MS })
  const deps = { db, redis, keys: streamKeys(config.KEY_PREFIX), eventsMaxLen: config.EVENTS_MAXLEN, logger }
  await waitForRedis(redis, 3000)
  const app = createApp(deps)
  const sockets = createSocketHandlers({ db, hub, logger, maxBufferedBytes: config.WS_MAX_BUFFERED_BYTES })

  const server = Bun.serve({
    port: config.PORT,
    hostname: config.HOST,
    fetch: app.fetch,
    websocket: sockets.handlers,
  })
  await hub.start(server)
  logger.info('api listening', { url: server.url.href })

  let closing: Promise<void> | null = null
  return {
    server,
    url: server.url,
    app,
    /** Stops accepting, closes sockets with 1001 so clients reconnect elsewhere, then releases connections. */
    close(): Promise<void> {
      closing ??= (async () => {
        sockets.closeAll(closeCodes.goingAway, 'server shutting down')
        await settleAll(logger, [server.stop(), hub.close()])
        await settleAll(logger, [redis.quit(), db.destroy()])
      })()
      return closing
    },
  }
}

export type ApiServer = Awaited<ReturnType<typeof startApiServer>>
