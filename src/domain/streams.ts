import type { Redis } from '../infra/redis'
import type { StreamKeys } from '../infra/stream-keys'
import type { Logger } from '../infra/logger'
import { changeToOutgoing, eventToFields, stopsItsRun, type OutgoingEvent, type StreamedChange, type TaskChange } from './task-events/task-event'

export interface StreamDeps {
  redis: Redis
  keys: StreamKeys
  eventsMaxLen: number
  logger: Logger
  metrics?: TaskMetrics
}

/** Counts task changes where they are produced, so no change is counted twice across instances. */
export interface TaskMetrics {
  /** One change of a task of this type, made by a transition with this metric label. */
  countTransition(label: string, type: string): void
}

/** The tasks among these changes left ready to claim (created due, retried, handed back, recovered). */
export const readyIds = (changes: readonly TaskChange[]) => changes.filter((c) => c.status === 'PENDING' && c.enqueued_at !== null).map((c) => c.id)

/**
 * Every produced change goes out through here: counted by its transition's
 * label, then published (events), with a job waking a worker for each task
 * in `ready` (just made ready to claim).
 */
export function publishChanges(deps: StreamDeps, ready: readonly number[], changes: readonly StreamedChange[]): Promise<boolean> {
  if (deps.metrics) {
    for (const c of changes) if (c.metric) deps.metrics.countTransition(c.metric, c.type)
  }
  return pushToStreams(deps, ready, changes.map(changeToOutgoing))
}

/** Connections whose last write failed: one warning per outage, not one per write. */
const failing = new WeakSet<Redis>()

/**
 * The jobs stream only wakes workers (they claim from Postgres), so it keeps
 * no backlog of its own: entries past this many are trimmed, and a worker
 * deletes the ones it reads.
 */
export const JOBS_MAXLEN = 1000

/**
 * One push is one script call per shard, however many entries it holds:
 * ioredis spends more CPU per command than Redis spends on an XADD, so a
 * batch of 64 tasks costs one command instead of 128. Redis keeps no state for
 * it: after a restart the script is sent again (EVALSHA falls back to EVAL).
 * KEYS: the shard's jobs, events and cancels, which share a hash tag (so a
 * Redis Cluster runs the script on one node). ARGV: events MAXLEN, jobs
 * MAXLEN, then counts and values: job task ids; events, each as its field
 * count, the task id to announce on the cancels channel (empty unless it was
 * cancelled or deleted) and its fields.
 */
const pushScript = `
local maxlen, jobsMaxlen = ARGV[1], ARGV[2]
local i = 3
local jobs = tonumber(ARGV[i])
for _ = 1, jobs do
  i = i + 1
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', jobsMaxlen, '*', 'task_id', ARGV[i])
end
i = i + 1
local events = tonumber(ARGV[i])
for _ = 1, events do
  local width, cancelled = tonumber(ARGV[i + 1]), ARGV[i + 2]
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', unpack(ARGV, i + 3, i + 2 + width))
  if cancelled ~= '' then redis.call('PUBLISH', KEYS[3], cancelled) end
  i = i + 2 + width
end
return jobs + events`

type Push = (jobs: string, events: string, cancels: string, ...args: (string | number)[]) => Promise<number>
const scripted = new WeakMap<Redis, Push>()
function pushCommand(redis: Redis): Push {
  let push = scripted.get(redis)
  if (!push) {
    redis.defineCommand('tasklinePush', { numberOfKeys: 3, lua: pushScript })
    push = (redis as unknown as { tasklinePush: Push }).tasklinePush.bind(redis)
    scripted.set(redis, push)
  }
  return push
}

/** One shard's part of a push. */
function shardArgs(deps: StreamDeps, jobs: readonly number[], events: readonly OutgoingEvent[]): (string | number)[] {
  const args: (string | number)[] = [deps.eventsMaxLen, JOBS_MAXLEN, jobs.length]
  for (const id of jobs) args.push(String(id))
  args.push(events.length)
  for (const e of events) {
    const fields = eventToFields(e)
    args.push(fields.length, stopsItsRun(e.message) ? String(e.message.task_id) : '', ...fields)
  }
  return args
}

/**
 * XADDs jobs and events (announcing cancellations) in one round trip per
 * shard. Never throws: Postgres already holds the truth, so a Redis failure
 * only delays delivery (workers also look for ready tasks on their own).
 * Returns whether every entry was written.
 */
export async function pushToStreams(deps: StreamDeps, jobs: readonly number[], events: readonly OutgoingEvent[]): Promise<boolean> {
  if (jobs.length + events.length === 0) return true
  const { keys } = deps
  const byShard = new Map<number, { jobs: number[]; events: OutgoingEvent[] }>()
  const part = (taskId: number) => {
    const index = keys.shardOf(taskId).index
    let p = byShard.get(index)
    if (!p) byShard.set(index, (p = { jobs: [], events: [] }))
    return p
  }
  for (const id of jobs) part(id).jobs.push(id)
  for (const e of events) part(e.message.task_id).events.push(e)
  try {
    const push = pushCommand(deps.redis)
    const written = await Promise.all(
      [...byShard].map(([index, p]) => {
        const shard = keys.shards[index]!
        return push(shard.jobs, shard.events, shard.cancels, ...shardArgs(deps, p.jobs, p.events))
      }),
    )
    if (failing.delete(deps.redis)) deps.logger.info('writing to redis streams again')
    return written.reduce((a, b) => a + b, 0) === jobs.length + events.length
  } catch (e) {
    if (!failing.has(deps.redis)) {
      failing.add(deps.redis)
      deps.logger.warn('cannot write to redis streams; postgres keeps everything and workers find ready tasks there', {
        error: e instanceof Error ? e.message : String(e),
      })
    }
    return false
  }
}
