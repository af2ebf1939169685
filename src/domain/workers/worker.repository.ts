import { sql } from 'kysely'
import type { Db } from '../../infra/db'
import { taskTotals } from '../stats/stats.repository'
import { WORKER_HISTORY_MS, WORKER_LIVENESS_MS, type WorkerRow } from './worker'

export interface WorkerBeat {
  id: string
  host: string
  pid: number
  version: string
  queues: readonly string[] | null
  types: readonly string[]
  concurrency: number
  running: number
}

/**
 * The worker's row, created on its first beat and refreshed on each; answers
 * whether another live worker lacks some of this one's types or queues: such
 * a worker may read the job of a task that only this one can take (one that
 * serves all of them, and more, takes every task it reads a job for).
 */
export async function beat(db: Db, w: WorkerBeat): Promise<{ othersDiffer: boolean }> {
  const values = { ...w, queues: w.queues ? [...w.queues] : null, types: [...w.types] }
  await db
    .insertInto('workers')
    .values(values)
    .onConflict((oc) => oc.column('id').doUpdateSet({ running: w.running, last_seen: sql<Date>`now()`, stopped_at: null }))
    .execute()
  // Null queues: every queue. Another worker covers this one when it has every type of this one's, and every queue.
  const { rows } = await sql<{ differ: boolean }>`
    select exists (
      select 1 from workers w
       where w.id <> ${w.id} and w.stopped_at is null and w.last_seen > now() - make_interval(secs => ${WORKER_LIVENESS_MS / 1000})
         and not (w.types @> ${values.types}::text[]
                  and (w.queues is null or coalesce(w.queues @> ${values.queues}::text[], false)))
    ) as differ`.execute(db)
  return { othersDiffer: rows[0]?.differ ?? true }
}

export async function markStopped(db: Db, id: string): Promise<void> {
  await db.updateTable('workers').set({ stopped_at: sql<Date>`now()`, running: 0 }).where('id', '=', id).execute()
}

/** Live workers, and those that stopped or died within the history window; older rows are deleted on the way. */
export async function listWorkers(db: Db): Promise<WorkerRow[]> {
  await db
    .deleteFrom('workers')
    .where('last_seen', '<', sql<Date>`now() - make_interval(secs => ${WORKER_HISTORY_MS / 1000})`)
    .execute()
  return db.selectFrom('workers').selectAll().orderBy('started_at', 'desc').execute()
}

/**
 * Queues with ready tasks that no live worker serves (a worker with no QUEUES
 * serves them all). The candidates come from the running totals, and each is
 * checked with one probe of the ready index: no scan of the tasks, however
 * many wait.
 */
export async function unservedQueues(db: Db): Promise<string[]> {
  const { rows } = await sql<{ queue: string }>`
    with pending as (
      select queue from ${taskTotals} c where status = 'PENDING' group by queue having sum(n) > 0
    )
    select p.queue from pending p
     where exists (select 1 from tasks t where t.status = 'PENDING' and t.enqueued_at is not null and t.queue = p.queue)
       and not exists (
         select 1 from workers w
          where w.stopped_at is null and w.last_seen > now() - make_interval(secs => ${WORKER_LIVENESS_MS / 1000})
            and (w.queues is null or p.queue = any(w.queues)))
     order by 1`.execute(db)
  return rows.map((r) => r.queue)
}

/** How many workers are alive now. */
export async function countAlive(db: Db): Promise<number> {
  const row = await db
    .selectFrom('workers')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('stopped_at', 'is', null)
    .where('last_seen', '>', sql<Date>`now() - make_interval(secs => ${WORKER_LIVENESS_MS / 1000})`)
    .executeTakeFirstOrThrow()
  return Number(row.n)
}
