import { hostname } from 'node:os'
import pkg from '../../package.json' with { type: 'json' }
import type { Db } from '../infra/db'
import type { Logger } from '../infra/logger'
import { WORKER_HEARTBEAT_MS } from '../domain/workers/worker'
import * as repo from '../domain/workers/worker.repository'
import { Periodic } from './periodic'

export interface HeartbeatOptions {
  db: Db
  logger: Logger
  workerId: string
  queues: readonly string[] | null
  types: readonly string[]
  concurrency: number
  /** How many tasks run here now. */
  running: () => number
}

/**
 * Says in Postgres, every few seconds, that this worker is alive and what it
 * runs (GET /api/workers/, /readyz, taskline_workers_alive); a clean stop
 * says so, and a worker that dies simply goes quiet.
 */
export class Heartbeat {
  private readonly periodic: Periodic
  /**
   * Whether, at the last beat, another live worker lacked some of this one's
   * queues or types: one that may read the jobs of tasks only this worker can
   * take. Assumed until the first beat says otherwise.
   */
  othersDiffer = true

  constructor(private readonly o: HeartbeatOptions) {
    this.periodic = new Periodic({ name: 'the heartbeat', logger: o.logger, pass: () => this.beat() })
  }

  async beat(): Promise<void> {
    const { o } = this
    const { othersDiffer } = await repo.beat(o.db, {
      id: o.workerId,
      host: hostname(),
      pid: process.pid,
      version: pkg.version,
      queues: o.queues,
      types: o.types,
      concurrency: o.concurrency,
      running: o.running(),
    })
    this.othersDiffer = othersDiffer
  }

  async start(): Promise<void> {
    await this.beat()
    this.periodic.start(WORKER_HEARTBEAT_MS)
  }

  async stop(): Promise<void> {
    await this.periodic.stop()
    await repo.markStopped(this.o.db, this.o.workerId)
  }
}
