/**
 * Reference (a): one task's Postgres and Redis work with nothing around it:
 * no HTTP, no events table, no sockets, one statement per step, each its own
 * round trip. `loops` copies run concurrently to saturate Postgres and Redis.
 * What Taskline adds on top (validation, Kysely, CTEs writing task_events,
 * the fan-out) is judged against this.
 */
import pg from 'pg'
import { Redis } from 'ioredis'
import { fail, job, reply } from './child-runtime'
import { createScratchTable } from './scratch-table'

export interface ReferenceJob {
  databaseUrl: string
  redisUrl: string
  keyPrefix: string
  loops: number
  warmupMs: number
  durationMs: number
}

export const referenceTable = 'bench_reference_tasks'

const j = job<ReferenceJob>()
const jobs = `${j.keyPrefix}reference:jobs`
const events = `${j.keyPrefix}reference:events`
const group = 'workers'

async function main() {
  const pool = new pg.Pool({ connectionString: j.databaseUrl, max: j.loops })
  const redis = new Redis(j.redisUrl)
  await createScratchTable(pool, referenceTable)
  await redis.xgroup('CREATE', jobs, group, '0', 'MKSTREAM')

  let done = 0
  let counting = false
  const event = (id: string, status: string) =>
    redis.xadd(events, 'MAXLEN', '~', 100_000, '*', 't', id, 'd', JSON.stringify({ kind: 'change', task_id: Number(id), status, at: new Date().toISOString() }))

  async function loop(n: number, until: number) {
    const consumer = `loop-${n}`
    while (performance.now() < until) {
      const { rows } = await pool.query<{ id: string }>(`insert into ${referenceTable} (title, payload) values ($1, $2) returning id`, [
        'bench reference',
        '{"duration_ms":0}',
      ])
      await redis.xadd(jobs, '*', 'task_id', rows[0]!.id)
      let entry: [string, string[]] | undefined
      while (!entry) {
        const res = (await redis.xreadgroup('GROUP', group, consumer, 'COUNT', 1, 'BLOCK', 100, 'STREAMS', jobs, '>')) as
          | [string, [string, string[]][]][]
          | null
        entry = res?.[0]?.[1][0]
      }
      const [streamId, fields] = entry
      const id = fields[1]!
      await pool.query(`update ${referenceTable} set status = 'PROCESSING', updated_at = now() where id = $1`, [id])
      await event(id, 'PROCESSING')
      await pool.query(`update ${referenceTable} set status = 'COMPLETED', updated_at = now() where id = $1`, [id])
      await event(id, 'COMPLETED')
      await redis.xack(jobs, group, streamId)
      if (counting) done++
    }
  }

  const start = performance.now()
  const until = start + j.warmupMs + j.durationMs
  setTimeout(() => (counting = true), j.warmupMs)
  await Promise.all(Array.from({ length: j.loops }, (_, n) => loop(n, until)))
  const elapsedMs = performance.now() - start - j.warmupMs
  await pool.query(`drop table if exists ${referenceTable}`)
  await redis.del(jobs, events)
  await pool.end()
  redis.disconnect()
  reply({ type: 'result', tasks: done, elapsedMs, tasksPerSecond: done / (elapsedMs / 1000) })
  setTimeout(() => process.exit(0), 50)
}

main().catch(fail)
