/**
 * Reference (a): one task's Postgres and Redis work with nothing around it,
 * written as well as these libraries allow: INSERT, XADD the job, XREADGROUP
 * it, UPDATE to PROCESSING, XADD its event, UPDATE to COMPLETED, XADD its
 * event, XACK; one step after the other, as a task needs them. The statements
 * are named (prepared once per connection, then only bound and executed),
 * ioredis pipelines what the loops send in the same tick on each connection
 * (enableAutoPipelining), and the pool is sized to the loops. No HTTP, no
 * events table, no sockets, no validation: what Taskline adds on top is
 * judged against this.
 *
 * A process runs trials on command (phases/references.ts): each trial has a
 * pool and Redis connections of its sizes (the previous trial's when they
 * match), reports 'ready' once every connection is up, runs its loops on 'go'
 * through a warm-up and a window, and reports the tasks completed in the
 * window; 'close' closes its connections. Two processes can run one trial together, each
 * with its share of the loops; the XREADGROUPs of all of them share one
 * consumer group.
 */
import pg from 'pg'
import { Redis } from 'ioredis'
import { fail, onCommand, reply } from './child-runtime'
import { measureCpu } from './procfs'

export const referenceTable = 'bench_reference_tasks'
export const referenceKeys = (keyPrefix: string) => ({ jobs: `${keyPrefix}reference:jobs`, events: `${keyPrefix}reference:events` })
export const referenceGroup = 'workers'

export interface TrialCommand {
  cmd: 'trial'
  databaseUrl: string
  redisUrl: string
  keyPrefix: string
  /** This process's loops, pg connections and Redis connections. */
  loops: number
  pool: number
  redisConnections: number
  /** Consumer names are `${consumerPrefix}${n}`: distinct over the processes of a trial. */
  consumerPrefix: string
  warmupMs: number
  durationMs: number
}

export interface TrialResult {
  type: 'result'
  /** Tasks whose XACK returned inside the window. */
  tasks: number
  windowMs: number
  /** Cores busy over the window: this process's loops, Postgres, Redis and the whole machine. */
  cores: Record<'loops' | 'postgres' | 'redis' | 'machine', number>
  /** Wakes per second over the window: this process, Postgres, Redis. */
  wakes: Record<'loops' | 'postgres' | 'redis', number>
}

const insert = `insert into ${referenceTable} (title, payload) values ($1, $2) returning id`
const toProcessing = `update ${referenceTable} set status = 'PROCESSING', updated_at = now() where id = $1`
const toCompleted = `update ${referenceTable} set status = 'COMPLETED', updated_at = now() where id = $1`

type Entry = [string, string[]]

/** Cores busy and wakes from `afterMs` from now, for `forMs`: this process, Postgres, Redis and the machine. */
function coresOver(afterMs: number, forMs: number): Promise<Pick<TrialResult, 'cores' | 'wakes'>> {
  return new Promise((resolve) => {
    setTimeout(() => {
      const cpu = measureCpu({ loops: () => [process.pid] })
      setTimeout(() => {
        const c = cpu.stop()
        const w = cpu.wakes
        resolve({
          cores: { loops: c.loops ?? 0, postgres: c.postgres ?? 0, redis: c.redis ?? 0, machine: c.machine ?? 0 },
          wakes: { loops: w.loops ?? 0, postgres: w.postgres ?? 0, redis: w.redis ?? 0 },
        })
      }, forMs)
    }, afterMs)
  })
}

/**
 * The last trial's pool and Redis connections, kept for the next trial of
 * this process if it has the same sizes (opening 64 Postgres connections is
 * most of a short trial's time); closed otherwise, so no two pools are open.
 */
let kept: { pool: pg.Pool | null; size: number; redis: Redis[] } = { pool: null, size: 0, redis: [] }

async function connections(t: TrialCommand) {
  if (kept.pool && kept.size !== t.pool) {
    await kept.pool.end().catch(() => {})
    kept.pool = null
  }
  if (kept.redis.length !== t.redisConnections) {
    for (const r of kept.redis) r.disconnect()
    kept.redis = []
  }
  kept.size = t.pool
  const pool = (kept.pool ??= new pg.Pool({ connectionString: t.databaseUrl, max: t.pool }))
  if (!kept.redis.length) kept.redis = Array.from({ length: t.redisConnections }, () => new Redis(t.redisUrl, { enableAutoPipelining: true }))
  const redis = kept.redis
  // Every connection up before the warm-up: the window measures the loop, not connecting.
  const clients = await Promise.all(Array.from({ length: t.pool }, () => pool.connect()))
  for (const c of clients) c.release()
  await Promise.all(redis.map((r) => r.ping()))
  return { pool, redis }
}

async function closeConnections() {
  await kept.pool?.end().catch(() => {})
  for (const r of kept.redis) r.disconnect()
  kept = { pool: null, size: 0, redis: [] }
}

async function trial(t: TrialCommand) {
  const { jobs, events } = referenceKeys(t.keyPrefix)
  try {
    const { pool, redis } = await connections(t)

    const event = (r: Redis, id: string, status: string) =>
      r.xadd(events, 'MAXLEN', '~', 100_000, '*', 't', id, 'd', JSON.stringify({ kind: 'change', task_id: Number(id), status, at: new Date().toISOString() }))

    let windowStart = Infinity
    let windowEnd = Infinity
    let done = 0
    async function loop(n: number) {
      const r = redis[n % redis.length]!
      const consumer = `${t.consumerPrefix}${n}`
      while (performance.now() < windowEnd) {
        const { rows } = await pool.query<{ id: string }>({ name: 'reference_insert', text: insert, values: ['bench reference', '{"duration_ms":0}'] })
        await r.xadd(jobs, '*', 'task_id', rows[0]!.id)
        // Never BLOCK: a blocked read would hold up every loop pipelined on its connection. Each loop's
        // XADD reaches Redis before its XREADGROUP, so an entry is always waiting; the retry is a guard.
        let entry: Entry | undefined
        while (!entry) {
          const res = (await r.xreadgroup('GROUP', referenceGroup, consumer, 'COUNT', 1, 'STREAMS', jobs, '>')) as [string, Entry[]][] | null
          entry = res?.[0]?.[1][0]
          if (!entry) await Bun.sleep(1)
        }
        const [streamId, fields] = entry
        const id = fields[1]!
        await pool.query({ name: 'reference_processing', text: toProcessing, values: [id] })
        await event(r, id, 'PROCESSING')
        await pool.query({ name: 'reference_completed', text: toCompleted, values: [id] })
        await event(r, id, 'COMPLETED')
        await r.xack(jobs, referenceGroup, streamId)
        const now = performance.now()
        if (now >= windowStart && now <= windowEnd) done++
      }
    }

    reply({ type: 'ready' })
    await new Promise<void>((resolve) => (go = resolve))
    const t0 = performance.now()
    windowStart = t0 + t.warmupMs
    windowEnd = windowStart + t.durationMs
    const busy = coresOver(t.warmupMs, t.durationMs)
    await Promise.all(Array.from({ length: t.loops }, (_, n) => loop(n)))
    reply({ type: 'result', tasks: done, windowMs: t.durationMs, ...(await busy) } satisfies TrialResult)
  } catch (e) {
    await closeConnections()
    throw e
  }
}

let go: (() => void) | null = null
onCommand(async (m: TrialCommand | { cmd: 'go' } | { cmd: 'close' }) => {
  if (m.cmd === 'go') {
    go?.()
    go = null
  } else if (m.cmd === 'trial') await trial(m)
  else if (m.cmd === 'close') {
    // Between trials of another process (or when done): no connections held idle.
    await closeConnections()
    reply({ type: 'closed' })
  }
})
process.on('unhandledRejection', fail)
reply({ type: 'started' })
