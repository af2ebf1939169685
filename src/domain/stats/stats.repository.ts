import { sql } from 'kysely'
import type { Db } from '../../infra/db'
import type { TaskStatus } from '../tasks/task'

/** `and owner_key = …` for one owner's figures, nothing for everyone's. */
const ownedBy = (ownerId: number | null | undefined) => (ownerId === undefined ? sql`` : sql`and owner_key = ${ownerId ?? 0}`)

export interface CountRow {
  queue: string
  type: string
  status: TaskStatus
  n: number
}

/** Every task count as rows (owner_key, queue, type, status, n): the folded totals plus the deltas not folded yet. */
export const taskTotals = sql`(
  select owner_key, queue, type, status, n from task_counts
  union all
  select owner_key, queue, type, status, delta from task_count_deltas
)`

/** Tasks by queue, type and status. */
export async function countTasks(db: Db, ownerId?: number | null): Promise<CountRow[]> {
  const { rows } = await sql<CountRow>`
    select queue, type, status, sum(n)::int8 as n from ${taskTotals} c where true ${ownedBy(ownerId)}
    group by 1, 2, 3 having sum(n) <> 0`.execute(db)
  return rows
}

/** Everyone's tasks by status and queue: the cluster-wide gauge. */
export async function countByStatusAndQueue(db: Db): Promise<{ status: TaskStatus; queue: string; n: number }[]> {
  const { rows } = await sql<{ status: TaskStatus; queue: string; n: number }>`
    select status, queue, sum(n)::int8 as n from ${taskTotals} c group by 1, 2 having sum(n) <> 0`.execute(db)
  return rows.map((r) => ({ ...r, n: Number(r.n) }))
}

/** Outcomes per minute since `since`, summed over queues and types. */
export async function outcomesPerMinute(db: Db, since: Date, ownerId?: number | null): Promise<{ minute: Date; completed: number; failed: number }[]> {
  const { rows } = await sql<{ minute: Date; completed: number; failed: number }>`
    select minute, sum(completed)::int8 as completed, sum(failed)::int8 as failed from (
      select minute, owner_key, completed, failed from task_outcomes where minute >= ${since}
      union all
      select date_trunc('minute', at), owner_key,
             case when status = 'COMPLETED' then delta else 0 end, case when status = 'FAILED' then delta else 0 end
        from task_count_deltas where delta > 0 and status in ('COMPLETED', 'FAILED') and at >= ${since}
    ) o where true ${ownedBy(ownerId)}
    group by 1 order by 1`.execute(db)
  return rows
}

/** Start-to-completion times per type, from the latest completions of the last hour (a bounded sample). */
export async function runTimes(db: Db, sample: number, ownerId?: number | null): Promise<{ type: string; count: number; p50_ms: number; p95_ms: number }[]> {
  const owner = ownerId === undefined ? sql`` : ownerId === null ? sql`and owner_id is null` : sql`and owner_id = ${ownerId}`
  const { rows } = await sql<{ type: string; count: number; p50_ms: number; p95_ms: number }>`
    select type, count(*)::int8 as count,
           percentile_cont(0.5) within group (order by ms) as p50_ms,
           percentile_cont(0.95) within group (order by ms) as p95_ms
      from (
        select type, extract(epoch from finished_at - started_at) * 1000 as ms from tasks
         where status = 'COMPLETED' and finished_at > now() - interval '1 hour' ${owner}
         order by finished_at desc limit ${sample}
      ) s
     group by type order by type`.execute(db)
  return rows
}

// Any constant works; every worker must use the same one.
const FOLD_LOCK = 72_616_285

/**
 * Moves the deltas into task_counts and the outcomes into task_outcomes, in
 * one statement: the rows it deletes are exactly the rows it adds up. One
 * worker at a time (two folds upserting the same rows could deadlock); the
 * others skip. Outcome minutes older than `keepOutcomes` are dropped.
 */
export async function foldCounts(db: Db, keepOutcomes: string): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const { rows: lock } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(${FOLD_LOCK}) as locked`.execute(trx)
    if (!lock[0]?.locked) return 0
    return fold(trx, keepOutcomes)
  })
}

async function fold(db: Db, keepOutcomes: string): Promise<number> {
  const { rows } = await sql<{ folded: number }>`
    with moved as (
      delete from task_count_deltas returning owner_key, queue, type, status, delta, at
    ), counts as (
      insert into task_counts (owner_key, queue, type, status, n)
      select owner_key, queue, type, status, sum(delta) from moved group by 1, 2, 3, 4
      on conflict (owner_key, queue, type, status) do update set n = task_counts.n + excluded.n
    ), outcomes as (
      insert into task_outcomes (minute, owner_key, queue, type, completed, failed)
      select date_trunc('minute', at), owner_key, queue, type,
             coalesce(sum(delta) filter (where status = 'COMPLETED'), 0), coalesce(sum(delta) filter (where status = 'FAILED'), 0)
        from moved where delta > 0 and status in ('COMPLETED', 'FAILED') group by 1, 2, 3, 4
      on conflict (minute, owner_key, queue, type) do update
        set completed = task_outcomes.completed + excluded.completed, failed = task_outcomes.failed + excluded.failed
    ), pruned as (
      delete from task_outcomes where minute < now() - ${keepOutcomes}::interval
    )
    select count(*)::int8 as folded from moved`.execute(db)
  return Number(rows[0]?.folded ?? 0)
}
