import { hostname } from 'node:os'
import type { Config } from '../config'
import { createDb, type Db } from '../infra/db'
import { createLogger, settleAll, type Logger } from '../infra/logger'
import { createMetrics, type Metrics } from '../infra/metrics'
import { closeRedis, createRedis, waitForRedis, type Redis } from '../infra/redis'
import { serveOn } from '../infra/serve'
import { streamKeys } from '../infra/stream-keys'
import type { HandlerSettings } from '../handlers/handler'
import { builtinHandlers } from '../handlers/registry'
import { startCancelListener } from './cancel-listener'
import { loadHandlerModules, type LoadedHandlers } from './handler-modules'
import { JobConsumer } from './job-consumer'
import { createJobPipeline } from './pipeline'
import { queueLimits } from './queue-limits'
import { Retention } from './retention'
import { Scheduler } from './scheduler'
import { Sweeper } from './sweeper'
import { CountFolder } from './count-folder'
import { Heartbeat } from './heartbeat'
import { TasksVacuum } from './vacuum'
import { registrationsOf, TypeRegistrar } from './type-registrar'

export interface WorkerOptions {
  logger?: Logger
  /** Handler modules to load beside the built-in types; default: config.HANDLERS. */
  handlerFiles?: readonly string[]
}

/** The built-in types' settings, from the worker's config. */
export const handlerSettings = (config: Config): HandlerSettings => ({
  demoWorkMs: config.DEMO_WORK_MS,
  http: { allowedOrigins: config.HTTP_TASK_ALLOWED_ORIGINS, signingSecret: config.HTTP_TASK_SIGNING_SECRET },
})

/**
 * The worker role: consumer (jobs stream) -> pipeline (intake, runner,
 * execution, outbox) -> Postgres + events stream. Handler modules are loaded
 * first: a worker whose handlers cannot load takes no port and no job.
 */
export async function startWorker(config: Config, o: WorkerOptions = {}) {
  const workerId = `${hostname()}-${process.pid}-${crypto.randomUUID().slice(0, 8)}`
  const logger = (o.logger ?? createLogger(config.LOG_LEVEL, { role: 'worker' }, config.LOG_FORMAT)).child({ workerId })
  const settings = handlerSettings(config)
  const loaded = await loadHandlerModules(o.handlerFiles ?? config.HANDLERS, builtinHandlers(settings))
  const keys = streamKeys(config.KEY_PREFIX, config.JOB_SHARDS)
  const db = createDb(config.DATABASE_URL, config.DB_POOL_SIZE)
  const producer = createRedis(config.REDIS_URL, 'producer', logger)
  // Waited for from now, so a refusal of REDIS_URL while the rest is built is reported once, as a bad setting.
  const producerUp = waitForRedis(producer, 3000)
  const metrics = createMetrics({ role: 'worker', redis: producer, keys })
  const metricsServer = await bindMetrics(config, metrics, { db, producer })
  const parts = buildParts(config, { workerId, logger, db, producer, keys, metrics, loaded })
  await producerUp
  await parts.start()
  logger.info('worker started', {
    concurrency: config.WORKER_CONCURRENCY,
    queues: config.QUEUES.length ? config.QUEUES : 'all',
    types: Object.keys(loaded.handlers),
    metrics: `${metricsServer.url.href}metrics`,
  })

  let closing: Promise<void> | null = null
  return {
    workerId,
    metricsUrl: metricsServer.url,
    runner: parts.pipeline.runner,
    sweeper: parts.sweeper,
    retention: parts.retention,
    scheduler: parts.scheduler,
    counts: parts.counts,
    /** Stops reading, lets running tasks finish within the grace period, hands back the rest. */
    close(): Promise<void> {
      closing ??= (async () => {
        logger.info('worker stopping', { running: parts.pipeline.runner.running.size })
        await parts.stop(() => void metricsServer.stop(true))
        await settleAll(logger, [closeRedis(producer), db.destroy()])
        logger.info('worker stopped')
      })()
      return closing
    },
  }
}

export type Worker = Awaited<ReturnType<typeof startWorker>>

interface WorkerParts {
  workerId: string
  logger: Logger
  db: Db
  producer: Redis
  keys: ReturnType<typeof streamKeys>
  metrics: Metrics
  loaded: LoadedHandlers
}

/** How often the task count deltas are folded into the totals. */
const COUNT_FOLD_MS = 2000

/** The worker's moving parts, built and wired; start() and stop() run them in order. */
function buildParts(config: Config, w: WorkerParts) {
  const { workerId, logger, db, producer, keys } = w
  const streams = { redis: producer, keys, eventsMaxLen: config.EVENTS_MAXLEN, logger, metrics: w.metrics }
  const consumer = new JobConsumer({
    blocking: () => createRedis(config.REDIS_URL, 'blocking', logger),
    producer,
    keys,
    consumer: workerId,
    pollMs: config.WORKER_POLL_MS,
    room: () => pipeline.runner.free(),
    holds: (taskId) => pipeline.runner.holds(taskId),
    logger,
  })
  const pipeline = createJobPipeline({
    ...streams,
    db,
    workerId,
    concurrency: config.WORKER_CONCURRENCY,
    leaseMs: config.VISIBILITY_TIMEOUT_MS,
    retryBaseMs: config.RETRY_BASE_MS,
    defaultTimeoutMs: config.TASK_TIMEOUT_MS,
    handlers: w.loaded.handlers,
    queues: config.QUEUES.length ? config.QUEUES : null,
    limits: queueLimits(config),
    othersDiffer: () => heartbeat.othersDiffer,
  })
  const sweeper = new Sweeper({ ...streams, db })
  const retention = new Retention({
    ...streams,
    db,
    removals: w.metrics,
    policy: { COMPLETED: config.RETENTION_COMPLETED, FAILED: config.RETENTION_FAILED, CANCELLED: config.RETENTION_CANCELLED },
    pauseMs: 50,
  })
  const scheduler = new Scheduler({ ...streams, db })
  const cancels = startCancelListener({ redis: createRedis(config.REDIS_URL, 'blocking', logger), keys, runner: pipeline.runner, logger })
  const registrar = new TypeRegistrar({ db, workerId, logger }, registrationsOf(w.loaded.handlers))
  const heartbeat = new Heartbeat({
    db,
    logger,
    workerId,
    queues: config.QUEUES.length ? config.QUEUES : null,
    types: Object.keys(w.loaded.handlers),
    concurrency: config.WORKER_CONCURRENCY,
    running: () => pipeline.runner.running.size,
  })
  const counts = new CountFolder({ db, logger })
  const vacuum = new TasksVacuum({ db, logger, intervalMs: config.TASKS_VACUUM_INTERVAL_MS })
  let pumping: Promise<void> = Promise.resolve()
  return {
    pipeline,
    sweeper,
    retention,
    scheduler,
    counts,
    async start() {
      await registrar.start()
      await heartbeat.start()
      await consumer.start()
      pumping = pipeline.pump(consumer)
      sweeper.start(config.SWEEP_INTERVAL_MS)
      retention.start(config.RETENTION_INTERVAL_MS)
      scheduler.start(config.SCHEDULER_INTERVAL_MS)
      counts.start(COUNT_FOLD_MS)
      vacuum.start()
    },
    async stop(afterReading: () => void) {
      // The batch in hand is claimed and started before the drain begins.
      await consumer.stop()
      await pumping
      afterReading()
      await pipeline.drain(config.SHUTDOWN_GRACE_MS)
      await settleAll(logger, [
        sweeper.stop(),
        retention.stop(),
        scheduler.stop(),
        counts.stop(),
        vacuum.stop(),
        cancels.stop(),
        registrar.stop(),
        heartbeat.stop(),
      ])
    },
  }
}

/** Bound before anything starts: a worker that cannot take its port must not take jobs either. */
async function bindMetrics(config: Config, metrics: Metrics, conns: { db: Db; producer: Redis }) {
  try {
    return serveMetrics(config, metrics)
  } catch (e) {
    // disconnect, not quit: the connection may not be up yet, and there is nothing to flush.
    conns.producer.disconnect()
    await conns.db.destroy()
    throw e
  }
}

// The worker has no API port; Prometheus scrapes it here.
function serveMetrics(config: Config, metrics: Metrics) {
  return serveOn('WORKER_METRICS_PORT', {
    port: config.WORKER_METRICS_PORT,
    hostname: config.HOST,
    development: false,
    routes: { '/metrics': () => metrics.render(), '/healthz': () => Response.json({ status: 'ok' }) },
    fetch: () => Response.json({ error: { code: 'not_found', message: 'the worker serves only /metrics and /healthz' } }, { status: 404 }),
  })
}
