import type { Config } from '../config'
import { createDb } from '../infra/db'
import { createLogger, settleAll, type Logger } from '../infra/logger'
import { createMetrics, type Metrics } from '../infra/metrics'
import { createRedis, waitForRedis } from '../infra/redis'
import { serveOn } from '../infra/serve'
import { streamKeys } from '../infra/stream-keys'
import { reconcileRedisEpoch } from '../domain/redis-epoch'
import { createTaskInserter } from '../domain/tasks/task.service'
import { createApp } from './app'
import { createTokenVerifier } from './auth'
import { loadDashboard } from './dashboard-files'
import { createEventHub } from './ws/event-hub'
import { closeCodes } from './ws/socket-session'
import { createSocketHandlers } from './ws/socket-handlers'
import dashboard from '../dashboard/index.html'

/** The API role: HTTP and WebSockets on one port, fed by the events stream. */
export async function startApiServer(config: Config, logger: Logger = createLogger(config.LOG_LEVEL, { role: 'api' }, config.LOG_FORMAT)) {
  const db = createDb(config.DATABASE_URL, config.DB_POOL_SIZE)
  const redis = createRedis(config.REDIS_URL, 'producer', logger)
  const keys = streamKeys(config.KEY_PREFIX)
  // Filled in below, once the sockets it counts exist.
  let metrics: Metrics
  const hub = createEventHub({
    redis: createRedis(config.REDIS_URL, 'blocking', logger),
    db,
    keys,
    logger,
    resyncMs: config.EVENTS_RESYNC_MS,
    onPublish: (lateMs) => metrics.eventPublished(lateMs),
  })
  const sockets = createSocketHandlers({
    db,
    hub,
    logger,
    limits: {
      maxBufferedBytes: config.WS_MAX_BUFFERED_BYTES,
      maxConnections: config.WS_MAX_CONNECTIONS,
      maxConnectionsPerToken: config.WS_MAX_CONNECTIONS_PER_TOKEN,
      maxMessageBytes: config.WS_MAX_MESSAGE_BYTES,
      idleTimeoutS: config.WS_IDLE_TIMEOUT_S,
    },
  })
  // Record which Redis holds our jobs, so a wipe before any worker runs is still noticed.
  if (await waitForRedis(redis, 3000)) {
    await reconcileRedisEpoch(db, redis, keys, logger).catch((e) => logger.warn('could not check the redis epoch', { error: (e as Error).message }))
  }
  metrics = createMetrics({ role: 'api', redis, keys, openSockets: () => sockets.sockets.size })
  const taskDeps = { db, redis, keys, eventsMaxLen: config.EVENTS_MAXLEN, logger, metrics }
  const inserter = createTaskInserter(taskDeps)
  const app = createApp({
    ...taskDeps,
    inserter,
    observeHttp: metrics.observeHttp,
    limits: { maxPayloadBytes: config.MAX_PAYLOAD_BYTES, maxPayloadDepth: config.MAX_PAYLOAD_DEPTH },
    auth: { mode: config.AUTH, verify: createTokenVerifier(db) },
    http: { maxBodyBytes: config.MAX_BODY_BYTES, rateLimitPerSec: config.RATE_LIMIT_PER_SEC, corsOrigins: config.CORS_ORIGINS },
    sockets: sockets.gate,
    publicUrl: config.PUBLIC_URL,
    dashboard: await loadDashboard(dashboard),
    renderMetrics: metrics.render,
  })
  if (config.AUTH === 'off') logger.warn('AUTH=off: anyone who can reach this port can read and change every task')

  // Every response, the dashboard's and /metrics' too, goes through the app and its middleware.
  // Never development mode: it would answer an uncaught error with its stack.
  const server = serveOn('PORT', {
    port: config.PORT,
    hostname: config.HOST,
    development: false,
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
        // Creates already answered may still have their push in flight.
        await inserter.pushed()
        await settleAll(logger, [redis.quit(), db.destroy()])
      })()
      return closing
    },
  }
}

export type ApiServer = Awaited<ReturnType<typeof startApiServer>>
