import type { Db } from '../../infra/db'
import { ForbiddenError } from '../errors'
import { JOBS_MAXLEN, pushToStreams, type StreamDeps } from '../streams'
import type { Principal } from '../tokens/token'
import type { Queue } from './queue'
import * as repo from './queue.repository'

export interface QueueDeps extends StreamDeps {
  db: Db
}

/** Every queue with its counts: the caller's own tasks, or everyone's for an admin. */
export function listQueues(deps: QueueDeps, who: Principal): Promise<Queue[]> {
  return repo.listQueues(deps.db, who.admin ? undefined : who.ownerId)
}

/**
 * Pausing stops every worker from starting the queue's tasks (they stay
 * PENDING; running ones finish); resuming lets them start again, and wakes
 * workers for its ready tasks: their jobs were read while it was paused, and
 * an idle worker would otherwise find them only at its next poll. It affects
 * every owner, so only an admin may.
 */
export async function setPaused(deps: QueueDeps, who: Principal, name: string, paused: boolean): Promise<Queue> {
  if (!who.admin) throw new ForbiddenError(`only an admin token may ${paused ? 'pause' : 'resume'} a queue`)
  await repo.setPaused(deps.db, name, paused)
  // More jobs than the stream keeps would be trimmed unread; the workers claim the rest from Postgres.
  if (!paused) await pushToStreams(deps, await repo.readyTaskIds(deps.db, name, JOBS_MAXLEN), [])
  const queue = (await repo.listQueues(deps.db)).find((q) => q.name === name)
  return queue ?? { name, paused, ready: 0, waiting: 0, running: 0 }
}
