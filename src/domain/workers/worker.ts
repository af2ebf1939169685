import type { Selectable } from 'kysely'
import { z } from 'zod'
import type { Workers } from '../../infra/database'

export type WorkerRow = Selectable<Workers>

/** How often a worker says it is alive; one silent for three of these is taken for dead. */
export const WORKER_HEARTBEAT_MS = 5000
export const WORKER_LIVENESS_MS = 3 * WORKER_HEARTBEAT_MS
/** Dead or stopped workers stay listed this long, so an operator sees what went away. */
export const WORKER_HISTORY_MS = 3_600_000

const timestamp = z.iso.datetime({ offset: true })

/** A worker as GET /api/workers/ answers it. */
export const workerSchema = z
  .object({
    id: z.string(),
    host: z.string(),
    pid: z.number().int(),
    version: z.string(),
    state: z.enum(['alive', 'stopped', 'dead']).meta({ description: 'dead: no heartbeat for three intervals without a clean stop' }),
    queues: z.array(z.string()).nullable().meta({ description: 'the queues it serves; null: every queue' }),
    types: z.array(z.string()),
    concurrency: z.number().int(),
    running: z.number().int().meta({ description: 'tasks running at its last heartbeat' }),
    started_at: timestamp,
    last_seen: timestamp,
    stopped_at: timestamp.nullable(),
  })
  .meta({ id: 'Worker' })

export function workerRowToWorker(row: WorkerRow, now = Date.now()) {
  const state = row.stopped_at ? 'stopped' : now - row.last_seen.getTime() > WORKER_LIVENESS_MS ? 'dead' : 'alive'
  return {
    id: row.id,
    host: row.host,
    pid: row.pid,
    version: row.version,
    state,
    queues: row.queues,
    types: row.types,
    concurrency: row.concurrency,
    running: row.running,
    started_at: row.started_at.toISOString(),
    last_seen: row.last_seen.toISOString(),
    stopped_at: row.stopped_at?.toISOString() ?? null,
  } satisfies z.output<typeof workerSchema>
}
export type Worker = ReturnType<typeof workerRowToWorker>
