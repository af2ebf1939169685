import { deletionEvent } from '../task-events/task-event'
import { pushToStreams, type StreamDeps } from '../streams'
import { wallMs } from '../../infra/clock'
import type { Db } from '../../infra/db'
import type { Principal } from '../tokens/token'
import type { DeleteFinishedTasksQuery, TaskRow, TaskStatus } from './task'
import { deleteFinishedTasks, type FinishedFilter, type RemovedTask } from './task-retention.repository'

export interface RemovalDeps extends StreamDeps {
  db: Db
  removals?: RemovalMetrics
}

export interface RemovalMetrics {
  countRemoved(status: TaskStatus, n: number): void
}

export interface RemovalOptions {
  /** Tasks per statement: small enough that each holds its row locks for milliseconds. */
  batchSize?: number
  /** Between batches, so a large removal leaves the pool and the disk to the API's requests. */
  pauseMs?: number
  /** Where the batches run (a pass's own connection, holding its lock); default deps.db. */
  conn?: Db
  /** Ends the loop after the batch in hand (a worker shutting down). */
  signal?: AbortSignal
}

export const DEFAULT_BATCH = 500

/**
 * Removes the finished tasks the filter names, with their events, a batch at
 * a time until none is left, and tells their subscribers: each gets the same
 * last message (`"deleted": true`) as after a DELETE of the one task. Workers
 * hear of it too, as of any deletion, and have nothing running to stop.
 * Returns how many were removed.
 */
export async function removeFinishedTasks(deps: RemovalDeps, f: FinishedFilter, o: RemovalOptions = {}): Promise<number> {
  const batchSize = o.batchSize ?? DEFAULT_BATCH
  let total = 0
  for (;;) {
    const removed = await deleteFinishedTasks(o.conn ?? deps.db, f, batchSize)
    total += removed.length
    if (removed.length > 0) {
      deps.removals?.countRemoved(f.status, removed.length)
      // Postgres already forgot them: a subscriber that misses this (Redis away) finds the task gone when it resyncs.
      await pushToStreams(deps, [], removed.map(toDeletionEvent))
    }
    if (removed.length < batchSize || o.signal?.aborted) return total
    if (o.pauseMs) await Bun.sleep(o.pauseMs)
  }
}

/** DELETE /api/tasks/?status=…&finished_before=…: the caller's own tasks, or everyone's for an admin. */
export function deleteFinishedTasksByRequest(deps: RemovalDeps, who: Principal, q: DeleteFinishedTasksQuery): Promise<number> {
  const ownerId = who.admin ? undefined : who.ownerId
  return removeFinishedTasks(deps, { status: q.status, finishedBefore: new Date(q.finished_before), ownerId }, { pauseMs: 10 })
}

function toDeletionEvent(t: RemovedTask) {
  // deletionEvent reads only these columns of the row.
  const row = { id: t.id, owner_id: t.owner_id, seq: t.seq, status: t.status, progress: t.progress } as TaskRow
  return { message: deletionEvent(row, { cursor: t.cursor, at: t.at }), storedAt: wallMs() }
}
