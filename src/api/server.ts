import type { Config } from '../config'
import { createDb, type Db } from '../infra/db'
import { createLogger, settleAll, type Logger } from '../infra/logger'
import { createMetrics, type ClusterFigures, type Metrics } from '../infra/metrics'
import { countByStatusAndQueue } from '../domain/stats/stats.repository'
import { countAlive } from '../domain/workers/worker.repository'
import { closeRedis, createRedis, waitForRedis, type Redis } from '../infra/redis'
import { serveOn } from '../infra/serve'
import { streamKeys, type StreamKeys } from '../infra/stream-keys'
import { createTaskInserter } from '../domain/tasks/task.service'
import { TaskTypeCatalogue } from '../domain/task-types/task-type-catalogue'
import { builtinTypes } from '../handlers/catalogue'
import { createApp } from './app'
import { createTokenVerifier } from './auth'
import { loadDashboard } from './dashboard-files'
import { createEventHub } from './ws/event-hub'
import { closeCodes } from './ws/socket-session'
import { createSocketHandlers } from './ws/socket-handlers'
import dashboard from '../dashboard/index.html'

type Connections = { db: Db; redis: Redis; keys: StreamKeys }
type Sockets = ReturnType<typeof createSocketHandlers>

/** The API role: HTTP and WebSockets on one port, fed by the events stream. */
export async function startApiServer(config: Config, logger: Logger = createLogger(config.LOG_LEVEL, { role: 'api' }, config.LOG_FORMAT)) {
  const conns: Connections = {
    db: createDb(config.DATABASE_URL, config.DB_POOL_SIZE),
    redis: createRedis(config.REDIS_URL, 'producer', logger),
    keys: streamKeys(config.KEY_PREFIX, config.JOB_SHARDS),
  }
  // Waited for from now, so a refusal of REDIS_URL during the dashboard's build is reported once, as a bad setting.
  const redisUp = waitForRedis(conns.redis, 3000)
  // Filled in below, once the sockets it counts exist.
  let metrics: Metrics
  const { hub, sockets } = createLive(config, conns, logger, (lateMs) => metrics.eventPublished(lateMs))
  metrics = createMetrics({ role: 'api', redis: conns.redis, keys: conns.keys, openSockets: () => sockets.sockets.size, cluster: clusterFigures(conns.db) })
  const { app, inserter } = await buildApp(config, conns, logger, metrics, sockets)
  if (config.AUTH === 'off') logger.warn('AUTH=off: anyone who can reach this port can read and change every task')
  // As the worker does: a first request finds Redis connected (a cluster's
  // client refuses commands until it has the slot map), unless Redis is away.
  await redisUp
  const server = listen(config, app, sockets)
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
        await settleAll(logger, [closeRedis(conns.redis), conns.db.destroy()])
      })()
      return closing
    },
  }
}

/** The event hub, on a blocking connection of its own, and the sockets it feeds. */
function createLive(config: Config, { db, keys }: Connections, logger: Logger, onPublish: (lateMs: number | null) => void) {
  const hub = createEventHub({ redis: () => createRedis(config.REDIS_URL, 'blocking', logger), db, keys, logger, resyncMs: config.EVENTS_RESYNC_MS, onPublish })
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
  return { hub, sockets }
}

/** What the API's /metrics reports for the whole cluster, from Postgres. */
const clusterFigures = (db: Db): ClusterFigures => ({ tasks: () => countByStatusAndQueue(db), workersAlive: () => countAlive(db) })

async function buildApp(config: Config, conns: Connections, logger: Logger, metrics: Metrics, sockets: Sockets) {
  const taskTypes = new TaskTypeCatalogue(conns.db, builtinTypes({ allowedOrigins: config.HTTP_TASK_ALLOWED_ORIGINS }), logger)
  const taskDeps = { ...conns, eventsMaxLen: config.EVENTS_MAXLEN, logger, metrics, taskTypes }
  const inserter = createTaskInserter(taskDeps)
  const app = createApp({
    ...taskDeps,
    inserter,
    observeHttp: metrics.observeHttp,
    limits: { maxPayloadBytes: config.MAX_PAYLOAD_BYTES, maxPayloadDepth: config.MAX_PAYLOAD_DEPTH },
    auth: { mode: config.AUTH, verify: createTokenVerifier(conns.db) },
    http: { maxBodyBytes: config.MAX_BODY_BYTES, rateLimitPerSec: config.RATE_LIMIT_PER_SEC, corsOrigins: config.CORS_ORIGINS },
    sockets: sockets.gate,
    publicUrl: config.PUBLIC_URL,
    dashboard: await loadDashboard(dashboard),
    renderMetrics: metrics.render,
  })
  return { app, inserter }
}

/**
 * Every response, the dashboard's and /metrics' too, goes through the app and
 * its middleware. Never development mode: it would answer an uncaught error
 * with its stack.
 */
function listen(config: Config, app: ReturnType<typeof createApp>, sockets: Sockets) {
  return serveOn('PORT', {
    port: config.PORT,
    hostname: config.HOST,
    development: false,
    fetch: app.fetch,
    websocket: sockets.handlers,
  })
}

export type ApiServer = Awaited<ReturnType<typeof startApiServer>>
