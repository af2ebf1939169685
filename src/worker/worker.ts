import { hostname } from 'node:os'
import type { Config } from '../config'
import { createDb } from '../infra/db'
import { createLogger, settleAll, type Logger } from '../infra/logger'
import { createMetrics, type Metrics } from '../infra/metrics'
import { createRedis, waitForRedis } from '../infra/redis'
import { serveOn } from '../infra/serve'
import { streamKeys } from '../infra/stream-keys'
import { startCancelListener } from './cancel-listener'
import { JobConsumer } from './job-consumer'
import { startLeaseKeeper } from './lease-keeper'
import { createJobPipeline } from './pipeline'
import { createSweeper } from './sweeper'

/**
 * The worker role: consumer (jobs stream) -> pipeline (intake, runner,
 * execution, outbox) -> Postgres + events stream.
 */
export async function startWorker(config: Config, baseLogger: Logger = createLogger(config.LOG_LEVEL, { role: 'worker' }, config.LOG_FORMAT)) {
  const workerId = `${hostname()}-${process.pid}-${crypto.randomUUID().slice(0, 8)}`
  const logger = baseLogger.child({ workerId })
  const keys = streamKeys(config.KEY_PREFIX)
  const db = createDb(config.DATABASE_URL, config.DB_POOL_SIZE)
  const producer = createRedis(config.REDIS_URL, 'producer', logger)
  const metrics = createMetrics({ role: 'worker', redis: producer, keys })
  // Bound before anything starts: a worker that cannot take its port must not take jobs either.
  let metricsServer: ReturnType<typeof serveMetrics>
  try {
    metricsServer = serveMetrics(config, metrics)
  } catch (e) {
    // disconnect, not quit: the connection may not be up yet, and there is nothing to flush.
    producer.disconnect()
    await db.destroy()
    throw e
  }
  const streams = { redis: producer, keys, eventsMaxLen: config.EVENTS_MAXLEN, logger, metrics }
  const leaseMs = config.VISIBILITY_TIMEOUT_MS

  const consumer = new JobConsumer({
    blocking: createRedis(config.REDIS_URL, 'blocking', logger),
    producer,
    keys,
    consumer: workerId,
    visibilityTimeoutMs: config.VISIBILITY_TIMEOUT_MS,
    maxDeliveries: config.MAX_DELIVERIES,
    logger,
  })
  const pipeline = createJobPipeline(
    {
      ...streams,
      db,
      workerId,
      concurrency: config.WORKER_CONCURRENCY,
      leaseMs,
      retryBaseMs: config.RETRY_BASE_MS,
      defaultTimeoutMs: config.TASK_TIMEOUT_MS,
      settings: { demoWorkMs: config.DEMO_WORK_MS },
    },
    consumer,
  )
  const { runner } = pipeline
  const sweeper = createSweeper({ ...streams, db })
  const cancels = startCancelListener({ redis: createRedis(config.REDIS_URL, 'blocking', logger), keys, runner, logger })
  const leases = startLeaseKeeper({ db, runner, consumer, workerId, leaseMs, logger })
  await waitForRedis(producer, 3000)
  await consumer.start()
  const pumping = pipeline.pump(consumer.batches(runner))
  sweeper.start(config.SWEEP_INTERVAL_MS)
  logger.info('worker started', { concurrency: config.WORKER_CONCURRENCY, metrics: `${metricsServer.url.href}metrics` })

  let closing: Promise<void> | null = null
  return {
    workerId,
    metricsUrl: metricsServer.url,
    runner,
    sweeper,
    /** Stops reading, lets running tasks finish within the grace period, hands back the rest. */
    close(): Promise<void> {
      closing ??= (async () => {
        logger.info('worker stopping', { running: runner.running.size })
        // The batch in hand is claimed and started before the drain begins.
        await consumer.stop()
        await pumping
        void metricsServer.stop(true)
        await pipeline.drain(config.SHUTDOWN_GRACE_MS)
        leases.stop()
        await settleAll(logger, [sweeper.stop(), cancels.stop()])
        await settleAll(logger, [producer.quit(), db.destroy()])
        logger.info('worker stopped')
      })()
      return closing
    },
  }
}

export type Worker = Awaited<ReturnType<typeof startWorker>>

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
