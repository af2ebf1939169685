/** `taskline all`: a single-container deploy, every part of Taskline in one process. */
import { startApiServer } from '../api/server'
import type { Config } from '../config'
import { createLogger } from '../infra/logger'
import * as migrator from '../infra/migrator'
import { startWorker } from '../worker/worker'

/**
 * Migrations, then both roles on one Config. Each role keeps its own pools and
 * log scope (role: api / worker), exactly as if they were two processes; one
 * SIGTERM (through runRole) closes both.
 */
export async function startAll(config: Config): Promise<{ close(): Promise<void> }> {
  const logger = createLogger(config.LOG_LEVEL, { role: 'migrate' })
  const applied = await migrator.migrateDatabase(config.DATABASE_URL, await migrator.shippedMigrations())
  logger.info(applied.length ? 'migrations applied' : 'database is up to date', { applied })
  const api = await startApiServer(config)
  let worker: Awaited<ReturnType<typeof startWorker>>
  try {
    worker = await startWorker(config)
  } catch (e) {
    // runRole exits on a failed start; the api's connections go first, not leaked.
    await api.close().catch(() => {})
    throw e
  }
  return {
    async close() {
      // Side by side: the worker's grace period need not wait for the api's sockets, nor the reverse.
      const results = await Promise.allSettled([api.close(), worker.close()])
      const failed = results.find((r) => r.status === 'rejected')
      if (failed) throw failed.reason
    },
  }
}
