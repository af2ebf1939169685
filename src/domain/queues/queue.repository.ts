import { sql } from 'kysely'
import type { Db } from '../../infra/db'
import type { Queue } from './queue'

/** Pauses or resumes a queue; its row is created on first use. */
export async function setPaused(db: Db, name: string, paused: boolean): Promise<void> {
  await db
    .insertInto('queues')
    .values({ name, paused })
    .onConflict((oc) => oc.column('name').doUpdateSet({ paused, updated_at: sql<Date>`now()` }))
    .execute()
}

/** Up to `limit` of the queue's ready tasks, the ones a claim takes first (tasks_ready_idx). */
export async function readyTaskIds(db: Db, queue: string, limit: number): Promise<number[]> {
  const rows = await db
    .selectFrom('tasks')
    .select('id')
    .where('status', '=', 'PENDING')
    .where('enqueued_at', 'is not', null)
    .where('queue', '=', queue)
    .orderBy('priority', 'desc')
    .orderBy('run_after')
    .orderBy('id')
    .limit(limit)
    .execute()
  return rows.map((r) => r.id)
}

/**
 * Every queue that has active tasks or is paused, with its counts
 * (the owner's tasks only, unless ownerId is undefined). Active tasks are few
 * next to finished ones, and the partial indexes hold only them.
 */
export async function listQueues(db: Db, ownerId?: number | null): Promise<Queue[]> {
  const { rows } = await sql<Queue>`
    with counts as (
      select queue,
             count(*) filter (where status = 'PENDING' and enqueued_at is not null)::int as ready,
             count(*) filter (where status = 'PENDING' and enqueued_at is null)::int as waiting,
             count(*) filter (where status = 'PROCESSING')::int as running
        from tasks
       where status in ('PENDING', 'PROCESSING')
         ${ownerId === undefined ? sql`` : ownerId === null ? sql`and owner_id is null` : sql`and owner_id = ${ownerId}`}
       group by queue
    )
    select coalesce(c.queue, q.name) as name, coalesce(q.paused, false) as paused,
           coalesce(c.ready, 0) as ready, coalesce(c.waiting, 0) as waiting, coalesce(c.running, 0) as running
      from counts c full join (select * from queues where paused) q on q.name = c.queue
     order by 1`.execute(db)
  return rows
}
