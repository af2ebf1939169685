import type { ChainableCommander } from 'ioredis'
import type { Redis } from '../infra/redis'
import type { StreamKeys } from '../infra/stream-keys'
import type { Logger } from '../infra/logger'
import { eventToFields, type TaskEventMessage } from './messages'
import { changeToEvent, type TaskChange } from './tasks/task.repository'

export interface StreamDeps {
  redis: Redis
  keys: StreamKeys
  eventsMaxLen: number
  logger: Logger
  metrics?: TaskMetrics
}

/** Counts task changes where they are produced, so no change is counted twice across instances. */
export interface TaskMetrics {
  countChanges(changes: readonly Pick<TaskChange, 'status' | 'seq' | 'type' | 'detail'>[]): void
}

/** Every produced change goes out through here: counted, then queued (jobs) and published (events). */
export function publishChanges(deps: StreamDeps, jobs: readonly number[], changes: readonly TaskChange[], more?: MoreCommands): Promise<boolean> {
  deps.metrics?.countChanges(changes)
  return pushToStreams(deps, jobs, changes.map(changeToEvent), more)
}

/** Connections whose last write failed: one warning per outage, not one per write. */
const failing = new WeakSet<Redis>()

/** Commands a caller adds to the same round trip (a worker's acks). */
export type MoreCommands = (p: ChainableCommander) => void

/**
 * XADDs jobs and events in one round trip (and announces cancellations). Never throws: Postgres already holds
 * the truth, so a Redis failure only delays delivery. Returns whether every
 * entry was written, so the caller can leave the task to the sweeper.
 */
export async function pushToStreams(
  deps: StreamDeps,
  jobs: readonly number[],
  events: readonly TaskEventMessage[],
  more?: MoreCommands,
): Promise<boolean> {
  const p = deps.redis.pipeline()
  for (const id of jobs) p.xadd(deps.keys.jobs, '*', 'task_id', String(id))
  more?.(p)
  for (const e of events) {
    p.xadd(deps.keys.events, 'MAXLEN', '~', deps.eventsMaxLen, '*', ...eventToFields(e))
    // Workers hear of it here rather than by reading every event of the stream.
    if (e.status === 'CANCELLED' || e.deleted) p.publish(deps.keys.cancels, String(e.task_id))
  }
  const sent = p.length
  if (sent === 0) return true
  try {
    const results = (await p.exec()) ?? []
    const failed = results.find(([err]) => err)
    if (failed) throw failed[0]
    if (failing.delete(deps.redis)) deps.logger.info('writing to redis streams again')
    return results.length === sent
  } catch (e) {
    if (!failing.has(deps.redis)) {
      failing.add(deps.redis)
      deps.logger.warn('cannot write to redis streams; postgres keeps everything and the sweeper enqueues later', {
        error: e instanceof Error ? e.message : String(e),
      })
    }
    return false
  }
}
