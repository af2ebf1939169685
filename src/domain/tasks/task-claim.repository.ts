import { sql, type RawBuilder } from 'kysely'
import type { Db } from '../../infra/db'
import { compileOnce, type Statement } from '../../infra/statement'
import { stamped, withEvents } from '../task-events/task-event.repository'
import type { TaskChange } from '../task-events/task-event'
import { columnsOf, guardOf, transitions } from './task-transitions'

/**
 * How a worker picks its next tasks: from Postgres, not in the order the jobs
 * stream happened to receive them. Among the ready tasks (tasks_ready_idx) of
 * the queues it may take from, owners take turns: an owner's turn number for
 * a task is how many of its tasks are running now plus that task's rank among
 * its own ready ones (by priority, then by how long it has been due), across
 * every queue, so spreading tasks over many queue names gains nothing. Lowest
 * turn first: an owner with thousands waiting cannot hold every slot while
 * another waits, and priority orders an owner's own tasks without jumping
 * another owner's turn. Equal turns go first to the owner whose last claim is
 * oldest (owner_turns): with one slot nobody's task is running at a claim, and
 * the owners must still alternate.
 */

/** The worker claiming: its id (the lease holder), its lease length and the types it handles. */
export interface Claimer {
  id: string
  leaseMs: number
  types: readonly string[]
}

/** What one claim may take, beyond the worker's types. */
export interface ClaimScope {
  /** The queues to take from; null: every queue not in `skip`. */
  queues: readonly string[] | null
  /** Queues never taken by this claim (the limited ones are claimed one by one). */
  skip: readonly string[]
}

const { claim } = transitions

/** Ready rows of `t`, as tasks_ready_idx holds them. */
const ready = (t: string) => sql`${sql.ref(`${t}.status`)} = 'PENDING' and ${sql.ref(`${t}.enqueued_at`)} is not null`

/**
 * The next n ready tasks' ids in turn order, locking nothing: the claim then
 * locks exactly these. Written out because Kysely has no recursive lateral
 * skip scan: the pairs CTE visits each distinct (queue, owner) of the index
 * with one probe each, however many tasks wait, and each pair offers its
 * best n.
 */
const pick = (slot: (name: ClaimSlot) => unknown) => sql<{ id: number }>`
    with recursive pairs(queue, owner) as (
      (select queue, coalesce(owner_id, 0) from tasks where ${ready('tasks')} order by queue, coalesce(owner_id, 0) limit 1)
      union all
      select nxt.queue, nxt.owner from pairs p cross join lateral (
        select t.queue, coalesce(t.owner_id, 0) as owner from tasks t
         where ${ready('t')} and (t.queue, coalesce(t.owner_id, 0)) > (p.queue, p.owner)
         order by t.queue, coalesce(t.owner_id, 0) limit 1) nxt
    ), running as (
      select coalesce(owner_id, 0) as owner, count(*)::int as n from tasks where status = 'PROCESSING' group by 1
    ), candidates as (
      select c.id, c.priority, c.run_after, p.owner
        from pairs p
        cross join lateral (
          select t.id, t.priority, t.run_after from tasks t
           where ${ready('t')} and t.queue = p.queue and coalesce(t.owner_id, 0) = p.owner
             and t.type = any(${slot('types')}::text[]) and t.run_after <= now()
           order by t.priority desc, t.run_after, t.id limit ${slot('n')}::int) c
       where (${slot('queues')}::text[] is null or p.queue = any(${slot('queues')}::text[]))
         and p.queue <> all(${slot('skip')}::text[])
         and not exists (select 1 from queues q where q.name = p.queue and q.paused)
    ), ranked as (
      select c.id, c.priority, c.run_after, ot.last_claimed_at,
             coalesce(r.n, 0) + row_number() over (partition by c.owner order by c.priority desc, c.run_after, c.id) as turn
        from candidates c left join running r on r.owner = c.owner left join owner_turns ot on ot.owner_id = c.owner
    )
    select id from ranked order by turn, last_claimed_at nulls first, priority desc, run_after, id limit ${slot('n')}::int`

/**
 * Records when the claimed tasks' owners got them, for the next picks' ties.
 * Each owner's row exists before its first claim (migration 000012), so this
 * only updates, and a row another claim holds is skipped, not waited for (it
 * is being brought up to date anyway): claims never wait on each other here,
 * and with one owner they do not queue on its row.
 */
const recordTurns = sql`turns as (
      select ot.owner_id from owner_turns ot
       where ot.owner_id in (select coalesce(owner_id, 0) from changed)
       for update of ot skip locked
    ), turned as (
      update owner_turns set last_claimed_at = clock_timestamp() where owner_id in (select owner_id from turns)
    )`

export type ClaimSlot = 'n' | 'types' | 'queues' | 'skip' | 'workerId'

/** What the claim returns: each claimed task's row with how many the pick chose, or, when none was claimed, that count on a lone row of nulls. */
type ClaimRow = { picked: number } & (TaskChange | { [K in keyof TaskChange]: null })
const claimedRow = (r: ClaimRow): r is { picked: number } & TaskChange => r.id !== null

/**
 * Picks and claims in one statement (one round trip): the picked ids are
 * locked with SKIP LOCKED, so a task another worker is claiming at this
 * moment is left to it, and a row a claim committed since the pick's snapshot
 * is checked again against `ready`. The row count of the pick comes back even
 * when nothing was claimed, so a claim that lost its picks to another worker
 * picks again. Exported for the test of its plan.
 */
export const claimQuery = (leaseMs: number, slot: (name: ClaimSlot) => unknown): RawBuilder<ClaimRow> =>
  withEvents<{ picked: number } & TaskChange>(
    // Picked and locked first, once each (materialized): as a subquery of the
    // update's WHERE, a planner that believed few tasks were ready ran it
    // again for every ready row.
    sql`picked as materialized (${pick(slot)}), locked as materialized (
      select id from tasks where id = any(array(select id from picked)) and ${ready('tasks')} for update skip locked
    ), changed as (
      update tasks set ${sql.join(Object.entries(columnsOf(claim, { workerId: slot('workerId') as string, leaseMs })).map(([c, v]) => sql`${sql.ref(c)} = ${v}`))}, seq = seq + 1,
             -- The clock, not the transaction's start: a limited queue's claim may have waited for its lock.
             updated_at = clock_timestamp()
        from locked
       where tasks.id = locked.id and ${guardOf(claim)}
      returning tasks.*
    ), ${recordTurns}`,
    claim.detail(),
    sql`p.picked, changed.*`,
    sql`(select count(*)::int as picked from picked) p left join (changed join ev on ev.task_id = changed.id) on true`,
  ).query

/** The claim, compiled once per lease length. */
const claimStatement = (leaseMs: number) => compileOnce<ClaimSlot, ClaimRow>((slot) => claimQuery(leaseMs, slot))

/** The lease is compiled into the claim: one statement per lease length, and a worker keeps its own. */
let claimWithLease: { leaseMs: number; run: Statement<ClaimSlot, ClaimRow> } | undefined

/** Picks racing another worker's claim can lose rows to it; a few more picks find the next ones. */
const MAX_PICKS = 3

/** Claims up to n ready tasks of the worker's types within scope, in turn order; may return fewer, or none. */
export async function claimNext(db: Db, n: number, worker: Claimer, scope: ClaimScope): Promise<TaskChange[]> {
  if (claimWithLease?.leaseMs !== worker.leaseMs) claimWithLease = { leaseMs: worker.leaseMs, run: claimStatement(worker.leaseMs) }
  const claimed: TaskChange[] = []
  for (let attempt = 0; attempt < MAX_PICKS && claimed.length < n; attempt++) {
    const { rows } = await claimWithLease.run(db, { n: n - claimed.length, types: worker.types, queues: scope.queues, skip: scope.skip, workerId: worker.id })
    const picked = rows[0]?.picked ?? 0
    // The claimed rows keep their `picked` column, unread.
    const got: TaskChange[] = rows.filter(claimedRow)
    claimed.push(...stamped({ rows: got }, claim.metric).rows)
    if (picked === 0 || got.length === picked) break
  }
  return claimed
}

/** A queue's limits across every worker: at most `concurrency` running, at most `perSecond` started each second. */
export interface QueueLimit {
  queue: string
  concurrency?: number
  perSecond?: number
}

/**
 * Claims from one limited queue, in a transaction holding that queue's
 * advisory lock, so two workers never both take the last slot or token.
 * Running tasks are counted from Postgres, so a dead worker's slots come back
 * when the sweeper recovers its tasks; the rate's token bucket is the queue's
 * row in `queues`.
 */
export async function claimLimited(db: Db, n: number, worker: Claimer, limit: QueueLimit): Promise<{ claimed: TaskChange[]; outOfTokens: boolean }> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtextextended(${`taskline.queue:${limit.queue}`}, 0))`.execute(trx)
    let allowed = n
    if (limit.concurrency !== undefined) {
      const row = await trx
        .selectFrom('tasks')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('status', '=', 'PROCESSING')
        .where('queue', '=', limit.queue)
        .executeTakeFirstOrThrow()
      allowed = Math.min(allowed, limit.concurrency - Number(row.n))
    }
    const bucket = limit.perSecond === undefined || allowed <= 0 ? undefined : await takeTokens(trx, limit.queue, limit.perSecond)
    const outOfTokens = bucket !== undefined && Math.floor(bucket.tokens) < allowed
    if (bucket) allowed = Math.min(allowed, Math.floor(bucket.tokens))
    const claimed = allowed > 0 ? await claimNext(trx, allowed, worker, { queues: [limit.queue], skip: [] }) : []
    if (bucket) await bucket.spend(claimed.length)
    // Only a shortage of tokens ends with time; a full queue ends when a run does.
    return { claimed, outOfTokens: outOfTokens && claimed.length === Math.floor(bucket!.tokens) }
  })
}

/** The queue's bucket refilled for the time since it was last used (burst: one second's worth, at least one). */
async function takeTokens(trx: Db, queue: string, perSecond: number) {
  const burst = Math.max(1, perSecond)
  const row = await trx
    .insertInto('queues')
    .values({ name: queue, rate_tokens: burst, rate_at: sql<Date>`now()` })
    .onConflict((oc) =>
      oc.column('name').doUpdateSet({
        rate_tokens: sql<number>`least(${burst}::float8, queues.rate_tokens + ${perSecond}::float8 * extract(epoch from now() - coalesce(queues.rate_at, now() - interval '1 hour')))`,
        rate_at: sql<Date>`now()`,
      }),
    )
    .returning('rate_tokens')
    .executeTakeFirstOrThrow()
  return {
    tokens: row.rate_tokens,
    spend: async (k: number) => {
      if (k > 0)
        await trx
          .updateTable('queues')
          .set({ rate_tokens: sql<number>`rate_tokens - ${k}::float8` })
          .where('name', '=', queue)
          .execute()
    },
  }
}

/**
 * Which of these queues have ready tasks of the worker's types and are not
 * paused: a limited queue without is not worth its transaction.
 */
export async function queuesWithReadyTasks(db: Db, queues: readonly string[], types: readonly string[]): Promise<Set<string>> {
  if (queues.length === 0) return new Set()
  const { rows } = await sql<{ queue: string }>`
    select q as queue from unnest(${queues}::text[]) q
     where not exists (select 1 from queues p where p.name = q and p.paused)
       and exists (select 1 from tasks t where ${ready('t')} and t.queue = q and t.type = any(${types}::text[]) and t.run_after <= now())`.execute(db)
  return new Set(rows.map((r) => r.queue))
}
