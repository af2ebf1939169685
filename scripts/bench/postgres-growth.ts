/**
 * How Postgres copes as Taskline's tables grow (issue 24, docs/scaling.md's
 * "Past one Postgres"): the measurements that say when partitioning
 * task_events by time and read replicas for listing become necessary.
 *
 *   bun scripts/bench/postgres-growth.ts [--rows N]
 *
 * A scratch database (taskline_pggrowth_<random>, migrated by the repo's own
 * migrator, dropped at the end, on failure and on Ctrl-C) is filled with
 * set-based SQL: N finished tasks (default 1,000,000) and five events each,
 * created over 30 days, from four owners (one with half the tasks), with the
 * events of neighbouring tasks interleaved as concurrent runs leave them. At
 * three sizes (empty, N/5 tasks, N tasks) it measures, on one connection so
 * the backend's CPU is ours alone (/proc/<pid>/schedstat):
 *
 * 1. the hot path through the repositories: insertTasks, claimNext,
 *    finishTasks, one task per statement and 64 per statement;
 * 2. listing: listTasks (one owner's newest page, a deep page, a status
 *    filter, a title search) and listTaskEvents (one task's history);
 *
 * both call by call in turn with the same calls on a control copy of the
 * schema (schema "control" of the same database, on a connection of its
 * own, never filled), so a busy shared machine slows both alike and the
 * ratio says what the table's size costs;
 * 3. retention: deleteFinishedTasks in batches of DEFAULT_BATCH until the
 *    oldest fifth of the tasks is gone (autovacuum's default trigger), then
 *    the VACUUM those dead rows need, with their WAL, dead tuples and sizes,
 *    all after a checkpoint; and at the last size, DROP TABLE and
 *    TRUNCATE of scratch copies holding as many rows, what retiring a time
 *    partition would cost instead;
 * 4. table and index sizes per million tasks.
 *
 * Then it prints a markdown report with the derived thresholds. WAL figures
 * are pg_current_wal_lsn differences, so another session writing at the same
 * time on a shared server inflates them; the retention batch's EXPLAIN WAL
 * figure is this backend's own.
 */
import { totalmem } from 'node:os'
import { readFileSync } from 'node:fs'
import pg from 'pg'
import { sql } from 'kysely'
import { createDb, type Db } from '../../src/infra/db'
import { migrate, readMigrations } from '../../src/infra/migrator'
import { insertTasks, listTasks, type NewTask } from '../../src/domain/tasks/task.repository'
import { claimNext, type Claimer } from '../../src/domain/tasks/task-claim.repository'
import { finishTasks } from '../../src/domain/tasks/task-runs.repository'
import { listTaskEvents } from '../../src/domain/task-events/task-event.repository'
import { deleteFinishedTasks, finishedTasksDeletion } from '../../src/domain/tasks/task-retention.repository'
import { DEFAULT_BATCH } from '../../src/domain/tasks/task-retention.service'
import type { ListTasksQuery, TaskStatus } from '../../src/domain/tasks/task'

// ---------------------------------------------------------------- options

const usage = 'usage: bun scripts/bench/postgres-growth.ts [--rows N]   (N finished tasks at the last size, five events each; default 1000000)'

function parseRows(argv: string[]): number {
  let rows = 1_000_000
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--rows' || a.startsWith('--rows=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i]
      rows = Number(v?.replace(/_/g, ''))
      if (!Number.isInteger(rows) || rows < 10_000) throw new UsageError(`--rows must be an integer of at least 10000, got ${v}`)
    } else if (a === '--help' || a === '-h') {
      console.log(usage)
      process.exit(0)
    } else throw new UsageError(`unknown argument ${a}`)
  }
  return rows
}

class UsageError extends Error {}

const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** Events per task: created, claimed, two progress reports, finished. */
const EVENTS_PER_TASK = 5
const SPAN_DAYS = 30
/**
 * A task's events are this many tasks' creations apart, as when runs overlap:
 * its history then lies on several heap pages, not one.
 */
const STAGGER = 20
/** Owners by share: one with half the tasks, one with a quarter, two with an eighth. */
const OWNER_SHARES = [0, 0, 0, 0, 1, 1, 2, 3]
const OWNERS = 4
/** The worker's pause between retention batches (src/worker/worker.ts). */
const WORKER_RETENTION_PAUSE_MS = 50
/** RETENTION_COMPLETED's default (src/config.ts): what sets how much is kept. */
const RETENTION_DAYS = 7
/**
 * Retention removes this share of the tasks before its VACUUM: autovacuum's
 * default trigger (autovacuum_vacuum_scale_factor 0.2), so VACUUM's cost per
 * removed task is what autovacuum would pay at steady state.
 */
const DEAD_SHARE = 0.2
const LIST_LIMIT = 20 // GET /api/tasks/'s default page
const HISTORY_LIMIT = 100 // GET /api/tasks/:id/events's default page

// ---------------------------------------------------------------- helpers

const log = (msg: string) => console.error(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}`)
const started = performance.now()

async function adminQuery(text: string) {
  const c = new pg.Client({ connectionString: adminUrl })
  await c.connect()
  try {
    return await c.query(text)
  } finally {
    await c.end()
  }
}

function databaseUrl(name: string) {
  const u = new URL(adminUrl)
  u.pathname = `/${name}`
  return u.toString()
}

/** Nanoseconds a process has run on a CPU (the first field of schedstat), or NaN when unreadable. */
function cpuNs(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0])
  } catch {
    return Number.NaN
  }
}

const loadAverage = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0])

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN

interface Timing {
  calls: number
  /** Tasks each call handles, for the per-task columns. */
  perCall: number
  p50: number
  p99: number
  mean: number
  /** Postgres backend CPU per call, us. */
  cpuUs: number
  /** WAL per call, bytes (cluster-wide LSN difference). */
  walBytes: number
}

const walLsn = async (db: Db) => (await sql<{ lsn: string }>`select pg_current_wal_lsn()::text as lsn`.execute(db)).rows[0]!.lsn
const walSince = async (db: Db, from: string) =>
  Number((await sql<{ d: string }>`select pg_wal_lsn_diff(pg_current_wal_lsn(), ${from}::pg_lsn)::text as d`.execute(db)).rows[0]!.d)

/** One statement's calls: their wall times, and the backend CPU and WAL each took. */
class Recorder {
  private samples: number[] = []
  private cpu = 0
  private wal = 0
  constructor(readonly perCall: number) {}

  add(ms: number, cpuNs: number, walBytes: number) {
    this.samples.push(ms)
    this.cpu += cpuNs
    this.wal += walBytes
  }

  timing(): Timing {
    const calls = this.samples.length
    const sorted = [...this.samples].sort((a, b) => a - b)
    return {
      calls,
      perCall: this.perCall,
      p50: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
      mean: sorted.reduce((a, v) => a + v, 0) / calls,
      cpuUs: this.cpu / 1000 / calls,
      walBytes: this.wal / calls,
    }
  }
}

/** One connection to one copy of the schema, with its owners. */
class Bench {
  constructor(
    readonly db: Db,
    readonly pid: number,
    readonly owners: number[],
  ) {}

  static async open(db: Db): Promise<Bench> {
    const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db)).rows[0]!.pid
    if (Number.isNaN(cpuNs(pid))) log(`cannot read /proc/${pid}/schedstat: Postgres is not local, CPU figures will be n/a`)
    const owners = (
      await sql<{ id: number }>`insert into api_tokens (name, secret_hash)
        select 'owner-' || n, '\\x00'::bytea from generate_series(1, ${OWNERS}) n returning id`.execute(db)
    ).rows.map((r) => r.id)
    return new Bench(db, pid, owners)
  }

  owner(k: number): number {
    return this.owners[OWNER_SHARES[k % OWNER_SHARES.length]!]!
  }

  /**
   * Runs fn, recording it unless rec is null (a warm-up). The WAL position
   * is read before and after, outside the timed part; the backend is idle
   * when its CPU time is read, so schedstat is up to date.
   */
  async call<T>(rec: Recorder | null, fn: () => Promise<T>): Promise<T> {
    if (!rec) return fn()
    const lsn = await walLsn(this.db)
    const cpu0 = cpuNs(this.pid)
    const t0 = performance.now()
    const out = await fn()
    const ms = performance.now() - t0
    rec.add(ms, cpuNs(this.pid) - cpu0, await walSince(this.db, lsn))
    return out
  }
}

/** The grown schema and the control one (kept small), measured call by call in turn, so both see the same moments of a shared machine. */
type Pair<T> = { big: T; control: T }

/** Runs fn on each bench in turn, `warm` times unmeasured, then `calls` times measured. */
async function paired(
  benches: Pair<Bench>,
  calls: number,
  warm: number,
  perCall: number,
  fn: (b: Bench, i: number) => Promise<unknown>,
): Promise<Pair<Timing>> {
  const rec = { big: new Recorder(perCall), control: new Recorder(perCall) }
  for (let i = 0; i < warm + calls; i++) {
    for (const k of ['big', 'control'] as const) await benches[k].call(i < warm ? null : rec[k], () => fn(benches[k], i))
  }
  return { big: rec.big.timing(), control: rec.control.timing() }
}

// ---------------------------------------------------------------- the data

interface Fill {
  t0: Date
  stepUs: number
  owners: number[]
}

const created = (f: Fill, i: string) => `('${f.t0.toISOString()}'::timestamptz + (${i} - 1)::bigint * ${f.stepUs} * interval '1 microsecond')`
const stagger = (f: Fill, k: number | string) => `(${k})::bigint * ${STAGGER * f.stepUs} * interval '1 microsecond'`
const statusOf = (i: string) => `(case when ${i} % 50 = 0 then 'FAILED' when ${i} % 97 = 0 then 'CANCELLED' else 'COMPLETED' end)::task_status`
const ownerOf = (f: Fill, i: string) => `(array[${OWNER_SHARES.map((s) => f.owners[s]).join(',')}]::bigint[])[1 + ${i} % ${OWNER_SHARES.length}]`

/**
 * Tasks lo..hi (1-based, over the whole run) with their events, as ids
 * idBase+1.. in creation order. Every task is finished: the live ones are few
 * at any time, and the hot-path phase adds its own.
 */
async function fill(db: Db, f: Fill, lo: number, hi: number): Promise<void> {
  const { rows } = await sql<{ base: number }>`select coalesce(max(id), 0)::int as base from tasks`.execute(db)
  const idOf = (i: string) => `(${rows[0]!.base} + ${i} - ${lo} + 1)`
  await sql
    .raw(`
    insert into tasks (id, title, type, payload, status, attempts, max_attempts, progress, result, error, seq,
                       run_after, enqueued_at, created_at, updated_at, started_at, finished_at, owner_id, queue, priority, request_id)
    overriding system value
    select ${idOf('i')}, 'nightly report ' || i, case when i % 10 = 0 then 'http' else 'demo' end,
           jsonb_build_object('duration_ms', i % 500, 'account', 'acct-' || (i % 1000)),
           st, 1, 3, case when st = 'COMPLETED' then 1 else 0.9 end,
           case when st = 'COMPLETED' then jsonb_build_object('ok', true, 'rows', i % 1000) end,
           case when st = 'FAILED' then 'Error: upstream answered 503' end,
           ${EVENTS_PER_TASK}, c, c, c, c + ${stagger(f, 4)}, c + ${stagger(f, 1)}, c + ${stagger(f, 4)},
           ${ownerOf(f, 'i')}, 'default', 0, substr(md5(i::text), 1, 16)
      from (select i, ${created(f, 'i')} as c, ${statusOf('i')} as st from generate_series(${lo}, ${hi}) i) s`)
    .execute(db)
  await sql.raw(`select setval(pg_get_serial_sequence('tasks', 'id'), (select max(id) from tasks))`).execute(db)
  // k walks (creation slot, seq) pairs in order; slot g's seq s belongs to task g - (s-1)*STAGGER.
  await sql
    .raw(`
    insert into task_events (task_id, seq, status, progress, at, detail)
    select ${idOf('i')}, s,
           case s when 1 then 'PENDING' when ${EVENTS_PER_TASK} then st::text else 'PROCESSING' end::task_status,
           case s when 1 then 0 when 2 then 0 when 3 then 0.5 when 4 then 0.9 else case when st = 'COMPLETED' then 1 else 0.9 end end,
           c + ${stagger(f, 's - 1')},
           case s when 1 then null
                  when 2 then jsonb_build_object('attempt', 1, 'worker', 'worker-' || (i % 4) || '-3f9c2a71')
                  when 3 then jsonb_build_object('message', 'halfway')
                  when 4 then null
                  else case st when 'COMPLETED' then jsonb_build_object('result', jsonb_build_object('ok', true, 'rows', i % 1000))
                               when 'FAILED' then jsonb_build_object('error', 'Error: upstream answered 503', 'attempt', 1)
                               else '{"reason": "cancelled by request"}'::jsonb end end
      from (select i, s, ${created(f, 'i')} as c, ${statusOf('i')} as st
              from (select k / ${EVENTS_PER_TASK} - (k % ${EVENTS_PER_TASK}) * ${STAGGER} as i, k % ${EVENTS_PER_TASK} + 1 as s
                      from generate_series(${lo}::bigint * ${EVENTS_PER_TASK},
                                           (${hi}::bigint + ${(EVENTS_PER_TASK - 1) * STAGGER}) * ${EVENTS_PER_TASK} + ${EVENTS_PER_TASK - 1}) k) e
             where i between ${lo} and ${hi}) x`)
    .execute(db)
}

// ---------------------------------------------------------------- measurements

interface Sizes {
  tasks: number
  events: number
  rels: { name: string; heap: number; toast: number; indexes: number; total: number }[]
  indexes: { table: string; name: string; bytes: number }[]
}

async function sizes(db: Db): Promise<Sizes> {
  const counts = (await sql<{ t: number; e: number }>`select (select count(*) from tasks)::int as t, (select count(*) from task_events)::int as e`.execute(db))
    .rows[0]!
  const rels = (
    await sql<{ name: string; heap: string; indexes: string; total: string }>`
      select relname as name, pg_relation_size(oid)::text as heap, pg_indexes_size(oid)::text as indexes, pg_total_relation_size(oid)::text as total
        from pg_class where oid in ('tasks'::regclass, 'task_events'::regclass) order by relname desc`.execute(db)
  ).rows.map((r) => ({
    name: r.name,
    heap: Number(r.heap),
    indexes: Number(r.indexes),
    total: Number(r.total),
    toast: Number(r.total) - Number(r.heap) - Number(r.indexes),
  }))
  const indexes = (
    await sql<{ table: string; name: string; bytes: string }>`
      select indrelid::regclass::text as table, indexrelid::regclass::text as name, pg_relation_size(indexrelid)::text as bytes
        from pg_index where indrelid in ('tasks'::regclass, 'task_events'::regclass) order by 1 desc, pg_relation_size(indexrelid) desc`.execute(db)
  ).rows.map((r) => ({ ...r, bytes: Number(r.bytes) }))
  return { tasks: counts.t, events: counts.e, rels, indexes }
}

interface HotPath {
  insert1: Timing
  claim1: Timing
  finish1: Timing
  insert64: Timing
  claim64: Timing
  finish64: Timing
  claimBacklog: Timing
}

const claimer: Claimer = { id: 'pggrowth-worker', leaseMs: 60_000, types: ['demo'] }
const anyQueue = { queues: null, skip: [] }
/** Ready tasks waiting when the backlog claims run. */
const BACKLOG = 1024

function newTasks(b: Bench, n: number, round: number): NewTask[] {
  return Array.from({ length: n }, (_, k) => ({
    title: `hot path ${round}.${k}`,
    type: 'demo',
    payload: { duration_ms: 0, account: `acct-${k}` },
    max_attempts: 3,
    owner_id: b.owner(round + k),
    idempotency_key: null,
  }))
}

/**
 * Create, claim and finish through the repositories, one task's lifecycle
 * after another (the ready backlog stays at one), then in batches of 64 (as
 * under load: a backlog of 64), on both schemas in turn. Last, claims of 64
 * from a backlog of BACKLOG ready tasks, as after a burst of creates; the
 * tasks left are then finished by hand, so nothing is ready afterwards.
 */
async function hotPath(benches: Pair<Bench>): Promise<Pair<HotPath>> {
  const lifecycle = async (n: number, rounds: number, warm: number) => {
    const rec = (): Record<'insert' | 'claim' | 'finish', Recorder> => ({ insert: new Recorder(n), claim: new Recorder(n), finish: new Recorder(n) })
    const recs = { big: rec(), control: rec() }
    for (let i = 0; i < warm + rounds; i++) {
      for (const k of ['big', 'control'] as const) {
        const b = benches[k]
        const on = (r: Recorder) => (i < warm ? null : r)
        await b.call(on(recs[k].insert), () => insertTasks(b.db, newTasks(b, n, i)))
        const got = await b.call(on(recs[k].claim), () => claimNext(b.db, n, claimer, anyQueue))
        if (got.length !== n) throw new Error(`claimNext found ${got.length} tasks, expected ${n}`)
        const items = got.map((t) => ({ key: { id: t.id, workerId: claimer.id, attempt: t.attempts }, resultJson: '{"ok":true}' }))
        const done = await b.call(on(recs[k].finish), () => finishTasks(b.db, items))
        if (done.length !== n) throw new Error(`finishTasks finished ${done.length} tasks, expected ${n}`)
      }
    }
    const out = (r: ReturnType<typeof rec>) => ({ insert: r.insert.timing(), claim: r.claim.timing(), finish: r.finish.timing() })
    return { big: out(recs.big), control: out(recs.control) }
  }
  const one = await lifecycle(1, 400, 40)
  const batch = await lifecycle(64, 60, 3)
  for (const b of [benches.big, benches.control]) for (let i = 0; i < BACKLOG / 64; i++) await insertTasks(b.db, newTasks(b, 64, 100_000 + i))
  const backlog = await paired(benches, 4, 1, 64, async (b) => {
    const got = await claimNext(b.db, 64, claimer, anyQueue)
    if (got.length !== 64) throw new Error(`claimNext found ${got.length} tasks, expected 64`)
  })
  for (const b of [benches.big, benches.control]) {
    await sql`update tasks set status = 'CANCELLED', enqueued_at = null, locked_by = null, locked_until = null, finished_at = now()
               where status in ('PENDING', 'PROCESSING')`.execute(b.db)
  }
  const of = (k: keyof Pair<unknown>): HotPath => ({
    insert1: one[k].insert,
    claim1: one[k].claim,
    finish1: one[k].finish,
    insert64: batch[k].insert,
    claim64: batch[k].claim,
    finish64: batch[k].finish,
    claimBacklog: backlog[k],
  })
  return { big: of('big'), control: of('control') }
}

type ListingName = 'newest' | 'deep' | 'failed' | 'everyone' | 'search' | 'historyRandom' | 'historyNew'
type Listing = Record<ListingName, Timing>

const q = (extra: Partial<ListTasksQuery> = {}): ListTasksQuery => ({ limit: LIST_LIMIT, ...extra })

/** The reads GET /api/tasks/ and GET /api/tasks/:id/events make, through the repositories, on both schemas in turn. */
async function listing(benches: Pair<Bench>): Promise<Pair<Listing>> {
  const ranges = new Map<Bench, { lo: number; hi: number }>()
  for (const b of [benches.big, benches.control]) {
    const { rows } = await sql<{ lo: number; hi: number }>`select min(id)::int as lo, max(id)::int as hi from tasks`.execute(b.db)
    ranges.set(b, rows[0]!)
  }
  const range = (b: Bench) => ranges.get(b)!
  // The same pseudo-random sequence for both: task i of n is at the same relative place in each.
  const spread = (b: Bench, i: number) => {
    const { lo, hi } = range(b)
    return lo + Math.floor(((hi - lo) * ((i * 7919) % 10_007)) / 10_007)
  }
  const queries: Record<ListingName, [number, number, (b: Bench, i: number) => Promise<unknown>]> = {
    newest: [200, 20, (b) => listTasks(b.db, q(), b.owners[0])],
    deep: [200, 20, (b, i) => listTasks(b.db, q({ cursor: spread(b, i) + 1 }), b.owners[0])],
    failed: [200, 20, (b) => listTasks(b.db, q({ status: 'FAILED' }), b.owners[2])],
    everyone: [200, 20, (b) => listTasks(b.db, q(), undefined)],
    // A title no task has: the search reads every task of the owner.
    search: [3, 1, (b) => listTasks(b.db, q({ q: 'no such title' }), b.owners[0])],
    historyRandom: [300, 20, (b, i) => listTaskEvents(b.db, spread(b, i), 0, HISTORY_LIMIT)],
    historyNew: [200, 20, (b, i) => listTaskEvents(b.db, range(b).hi - (i % 1000), 0, HISTORY_LIMIT)],
  }
  const big = {} as Listing
  const control = {} as Listing
  for (const [name, [calls, warm, fn]] of Object.entries(queries) as [ListingName, (typeof queries)[ListingName]][]) {
    const t = await paired(benches, calls, warm, 1, fn)
    big[name] = t.big
    control[name] = t.control
  }
  return { big, control }
}

interface TableStat {
  /** Free space pg_freespacemap records in both heaps: room VACUUM made for new rows, not given back (NaN without the extension). */
  heapFree: number
  tasksDead: number
  eventsDead: number
  tasksBytes: number
  eventsBytes: number
}

async function tableStats(db: Db): Promise<TableStat> {
  // The deletes' counts reach pg_stat_user_tables when this backend next goes idle.
  await sql`select pg_stat_force_next_flush()`.execute(db)
  const { rows } = await sql<{ relname: string; dead: string; bytes: string }>`
    select relname, n_dead_tup::text as dead, pg_total_relation_size(relid)::text as bytes
      from pg_stat_user_tables where relid in ('tasks'::regclass, 'task_events'::regclass)`.execute(db)
  const by = (n: string) => rows.find((r) => r.relname === n)!
  const free = await sql<{
    b: string
  }>`select ((select sum(avail) from pg_freespace('tasks')) + (select sum(avail) from pg_freespace('task_events')))::text as b`
    .execute(db)
    .then(
      (r) => Number(r.rows[0]!.b),
      () => Number.NaN,
    )
  return {
    heapFree: free,
    tasksDead: Number(by('tasks').dead),
    eventsDead: Number(by('task_events').dead),
    tasksBytes: Number(by('tasks').bytes),
    eventsBytes: Number(by('task_events').bytes),
  }
}

interface Retention {
  tasks: number
  events: number
  batches: number
  elapsedMs: number
  batchP50: number
  batchP99: number
  cpuUs: number
  walBytes: number
  before: TableStat
  after: TableStat
  vacuum: { elapsedMs: number; cpuUs: number; walBytes: number; after: TableStat }
  explain: { ms: number; tasksMs: number; eventsMs: number; walFpi: number; tasksWal: number; eventsWal: number }
}

interface PlanNode {
  'Node Type': string
  'Subplan Name'?: string
  'Actual Total Time'?: number
  'WAL Bytes'?: number
  'WAL FPI'?: number
  Plans?: PlanNode[]
}

function findCte(node: PlanNode, name: string): PlanNode | undefined {
  if (node['Subplan Name'] === `CTE ${name}`) return node
  for (const c of node.Plans ?? []) {
    const hit = findCte(c, name)
    if (hit) return hit
  }
  return undefined
}

/**
 * The worker's retention path: deleteFinishedTasks, a batch at a time (no
 * pause: its rate, not the worker's pacing), per terminal status, until the
 * oldest `count` live tasks are gone; then VACUUM, which autovacuum would run
 * for those dead rows. One batch first under EXPLAIN (ANALYZE, WAL): this
 * backend's own WAL, split between the two deletes.
 */
async function retention(b: Bench, count: number): Promise<Retention> {
  const { db } = b
  const cut = (
    await sql<{ at: Date }>`select finished_at as at from tasks where finished_at is not null order by finished_at offset ${count} limit 1`.execute(db)
  ).rows[0]!.at
  const explained = (
    await sql<{
      'QUERY PLAN': [{ Plan: PlanNode; 'Execution Time': number }]
    }>`explain (analyze, wal, buffers, format json) ${finishedTasksDeletion({ status: 'COMPLETED', finishedBefore: cut }, DEFAULT_BATCH)}`.execute(db)
  ).rows[0]!['QUERY PLAN'][0]
  const plan = explained.Plan
  // The CTEs nobody reads (events) run after the plan's top node, which does not count them: each is read on its own.
  // removed's count includes doomed's row locks, which its array(select id from doomed) ran first.
  const tasksNode = findCte(plan, 'removed')
  const eventsNode = findCte(plan, 'events')
  const explain = {
    ms: explained['Execution Time'],
    tasksMs: tasksNode?.['Actual Total Time'] ?? Number.NaN,
    eventsMs: eventsNode?.['Actual Total Time'] ?? Number.NaN,
    tasksWal: tasksNode?.['WAL Bytes'] ?? Number.NaN,
    eventsWal: eventsNode?.['WAL Bytes'] ?? Number.NaN,
    walFpi: (tasksNode?.['WAL FPI'] ?? 0) + (eventsNode?.['WAL FPI'] ?? 0),
  }
  await sql`checkpoint`.execute(db)
  const before = await tableStats(db)
  const eventsBefore = (await sql<{ n: number }>`select count(*)::int as n from task_events`.execute(db)).rows[0]!.n
  const lsn = await walLsn(db)
  const cpu0 = cpuNs(b.pid)
  const samples: number[] = []
  let tasks = 0
  const t0 = performance.now()
  for (const status of ['COMPLETED', 'FAILED', 'CANCELLED'] as TaskStatus[]) {
    for (;;) {
      const s = performance.now()
      const removed = await deleteFinishedTasks(db, { status, finishedBefore: cut }, DEFAULT_BATCH)
      samples.push(performance.now() - s)
      tasks += removed.length
      if (removed.length < DEFAULT_BATCH) break
    }
  }
  const elapsedMs = performance.now() - t0
  const cpuUs = (cpuNs(b.pid) - cpu0) / 1000
  const walBytes = await walSince(db, lsn)
  const after = await tableStats(db)
  const events = eventsBefore - (await sql<{ n: number }>`select count(*)::int as n from task_events`.execute(db)).rows[0]!.n
  samples.sort((x, y) => x - y)

  const vLsn = await walLsn(db)
  const vCpu = cpuNs(b.pid)
  const v0 = performance.now()
  await sql`vacuum tasks, task_events`.execute(db)
  const vacuum = {
    elapsedMs: performance.now() - v0,
    cpuUs: (cpuNs(b.pid) - vCpu) / 1000,
    walBytes: await walSince(db, vLsn),
    after: await tableStats(db),
  }
  return {
    tasks,
    events,
    batches: samples.length,
    elapsedMs,
    batchP50: quantile(samples, 0.5),
    batchP99: quantile(samples, 0.99),
    cpuUs,
    walBytes,
    before,
    after,
    vacuum,
    explain,
  }
}

interface Retire {
  tasks: number
  events: number
  bytes: number
  drop: { ms: number; walBytes: number }
  truncate: { ms: number; walBytes: number }
}

/**
 * What retiring a partition would cost instead: scratch tables shaped like
 * tasks and task_events (their indexes too) holding as many of the oldest
 * rows as retention deleted, dropped, and a second pair truncated. Nothing
 * here is partitioned; these stand for the partition a DETACH would leave.
 */
async function retire(b: Bench, tasks: number, events: number): Promise<Retire> {
  const { db } = b
  for (const p of ['drop', 'trunc']) {
    await sql.raw(`create table pggrowth_${p}_tasks (like tasks including all)`).execute(db)
    await sql.raw(`create table pggrowth_${p}_events (like task_events including all)`).execute(db)
    await sql.raw(`insert into pggrowth_${p}_tasks overriding system value select * from tasks order by id limit ${tasks}`).execute(db)
    await sql.raw(`insert into pggrowth_${p}_events overriding system value select * from task_events order by id limit ${events}`).execute(db)
  }
  const { rows } = await sql<{ b: string }>`
    select (pg_total_relation_size('pggrowth_drop_tasks') + pg_total_relation_size('pggrowth_drop_events'))::text as b`.execute(db)
  await sql`checkpoint`.execute(db)
  const timed = async (text: string) => {
    const lsn = await walLsn(db)
    const t0 = performance.now()
    await sql.raw(text).execute(db)
    return { ms: performance.now() - t0, walBytes: await walSince(db, lsn) }
  }
  const drop = await timed('drop table pggrowth_drop_tasks, pggrowth_drop_events')
  const truncate = await timed('truncate pggrowth_trunc_tasks, pggrowth_trunc_events')
  await sql.raw('drop table pggrowth_trunc_tasks, pggrowth_trunc_events').execute(db)
  return { tasks, events, bytes: Number(rows[0]!.b), drop, truncate }
}

// ---------------------------------------------------------------- the run

interface Stage {
  label: string
  /** The machine's 1-minute load average before and after the hot path: the box and the server are shared. */
  load: [number, number]
  sizes: Sizes
  hot: Pair<HotPath>
  list: Pair<Listing>
  retention?: Retention
}

async function run(dbs: Pair<Db>, rows: number): Promise<string> {
  const benches = { big: await Bench.open(dbs.big), control: await Bench.open(dbs.control) }
  const b = benches.big
  const { db } = b
  const f: Fill = { t0: new Date(Date.now() - SPAN_DAYS * 86_400_000), stepUs: Math.floor((SPAN_DAYS * 86_400e6) / rows), owners: b.owners }
  const settings = (
    await sql<{ version: string; sb: string; sbBytes: string; autovacuum: string }>`
      select version() as version, current_setting('shared_buffers') as sb,
             pg_size_bytes(current_setting('shared_buffers'))::text as "sbBytes", current_setting('autovacuum') as autovacuum`.execute(db)
  ).rows[0]!

  const stages: Stage[] = []
  let filled = 0
  for (const target of [0, Math.round(rows / 5), rows]) {
    if (target > filled) {
      log(`filling tasks ${filled + 1}..${target} (${EVENTS_PER_TASK} events each)`)
      await fill(db, f, filled + 1, target)
      filled = target
    }
    // What autovacuum would have done by now (the server may have it off): hint bits, visibility map, statistics;
    // on the control schema too, whose last stage's churn left dead entries in the partial indexes the claim walks.
    for (const x of [benches.big, benches.control]) await sql`vacuum (analyze) tasks, task_events`.execute(x.db)
    await sql`checkpoint`.execute(db)
    const s = await sizes(db)
    const label = `${fmtInt(s.tasks)} tasks / ${fmtInt(s.events)} events`
    log(`${label}: hot path`)
    const load0 = loadAverage()
    const hot = await hotPath(benches)
    const load: [number, number] = [load0, loadAverage()]
    log(`${label}: listing`)
    const list = await listing(benches)
    let ret: Retention | undefined
    if (target > 0) {
      const count = Math.round(s.tasks * DEAD_SHARE)
      log(`${label}: retention of the oldest ${fmtInt(count)} tasks`)
      ret = await retention(b, count)
    }
    stages.push({ label, load, sizes: s, hot, list, retention: ret })
  }
  const control = await sizes(benches.control.db)
  const last = stages.at(-1)!.retention!
  log('scratch copies: DROP TABLE and TRUNCATE')
  const ret = await retire(b, last.tasks, last.events)
  return report({ rows, stages, control, retire: ret, settings: { ...settings, sbBytes: Number(settings.sbBytes) } })
}

// ---------------------------------------------------------------- the report

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US')
const fmt = (n: number, digits = 3) => {
  if (!Number.isFinite(n)) return 'n/a'
  if (n === 0) return '0'
  const mag = Math.floor(Math.log10(Math.abs(n)))
  const dec = Math.max(0, digits - 1 - mag)
  return n.toLocaleString('en-US', { minimumFractionDigits: dec, maximumFractionDigits: dec })
}
const MiB = 1024 * 1024
const GiB = 1024 * MiB
const fmtBytes = (n: number) => (n >= GiB ? `${fmt(n / GiB)} GiB` : n >= MiB ? `${fmt(n / MiB)} MiB` : n >= 1024 ? `${fmt(n / 1024)} KiB` : `${fmt(n)} B`)

function report(r: {
  rows: number
  stages: Stage[]
  /** The control schema at the end. */
  control: Sizes
  retire: Retire
  settings: { version: string; sb: string; sbBytes: number; autovacuum: string }
}): string {
  const { stages } = r
  const out: string[] = []
  const line = (s = '') => out.push(s)
  const table = (head: string[], rows: string[][]) => {
    line(`| ${head.join(' | ')} |`)
    line(`|${head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`)
    for (const row of rows) line(`| ${row.join(' | ')} |`)
    line()
  }
  const sizeCols = stages.map((s) => `${fmtInt(s.sizes.tasks)} tasks`)
  const ram = totalmem()

  line(`## Postgres growth (\`bun scripts/bench/postgres-growth.ts --rows ${r.rows}\`)`)
  line()
  line(
    `${new Date().toISOString().slice(0, 10)}, ${r.settings.version.split(' on ')[0]}, shared_buffers ${r.settings.sb}, autovacuum ${r.settings.autovacuum}, ` +
      `${navigator.hardwareConcurrency} cores, ${fmtBytes(ram)} RAM, Postgres on the same machine. Finished tasks created over ${SPAN_DAYS} days ` +
      `by ${OWNERS} owners (shares 1/2, 1/4, 1/8, 1/8), ${EVENTS_PER_TASK} events each, a task's events ${STAGGER} creations apart; ` +
      `each size's measurements start after VACUUM ANALYZE (both schemas) and a checkpoint. Every figure in (parentheses) is the same call on a control copy of ` +
      `the schema in the same database, kept small (${fmtInt(r.control.tasks)} tasks at the end), run call by call in turn with the grown ` +
      `one, so both see the same moments of a shared machine. One connection each: "PG CPU" is its backend's CPU time ` +
      `(/proc/<pid>/schedstat), WAL the pg_current_wal_lsn difference. Wall time ${fmt((performance.now() - started) / 1000)} s.`,
  )
  line()

  line('### 1. Hot path by table size (repositories, one call at a time)')
  line()
  const hotRows: [string, keyof HotPath][] = [
    ['insertTasks, 1 task (task + first event)', 'insert1'],
    ['claimNext, 1 task (pick + claim + event)', 'claim1'],
    ['finishTasks, 1 task (update + event)', 'finish1'],
    ['insertTasks, 64 tasks', 'insert64'],
    ['claimNext, 64 tasks', 'claim64'],
    ['finishTasks, 64 tasks', 'finish64'],
    [`claimNext, 64 tasks, from ${fmtInt(BACKLOG)} ready`, 'claimBacklog'],
  ]
  table(
    ['p50 ms per call; PG CPU us per task', ...sizeCols],
    hotRows.map(([label, k]) => [
      label,
      ...stages.map((s) => {
        const [t, c] = [s.hot.big[k], s.hot.control[k]]
        return `${fmt(t.p50)} (${fmt(c.p50)}); ${fmt(t.cpuUs / t.perCall)} (${fmt(c.cpuUs / c.perCall)})`
      }),
    ]),
  )
  line(
    `The 0-task column is a freshly migrated schema whose statistics say it is empty. The backlog row does not depend on the table's size ` +
      `(the control pays the same): with statistics taken when no task was PENDING, as ANALYZE usually finds them, the claim's UPDATE ` +
      `runs its locking subquery, a scan of the ready tasks, once per PENDING row (auto_explain: a nested-loop semi join), ` +
      `so its cost grows with the square of the backlog.`,
  )
  line()
  const hotCpu = (h: HotPath, k: 1 | 64) =>
    (k === 1 ? [h.insert1, h.claim1, h.finish1] : [h.insert64, h.claim64, h.finish64]).reduce((a, t) => a + t.cpuUs / t.perCall, 0)
  const ratio = (s: Stage, k: 1 | 64) => hotCpu(s.hot.big, k) / hotCpu(s.hot.control, k)
  table(
    ['whole lifecycle (create + claim + finish), PG CPU per task', ...sizeCols],
    [
      ['1 task per statement', ...stages.map((s) => `${fmt(hotCpu(s.hot.big, 1))} us (${fmt(hotCpu(s.hot.control, 1))}), x${fmt(ratio(s, 1))}`)],
      ['64 tasks per statement', ...stages.map((s) => `${fmt(hotCpu(s.hot.big, 64))} us (${fmt(hotCpu(s.hot.control, 64))}), x${fmt(ratio(s, 64))}`)],
      ['machine load average, before / after', ...stages.map((s) => `${s.load[0]} / ${s.load[1]}`)],
    ],
  )

  line('### 2. Listing by table size (p50 / p99 ms)')
  line()
  const listRows: [string, ListingName][] = [
    [`listTasks: biggest owner's newest ${LIST_LIMIT}`, 'newest'],
    ['listTasks: biggest owner, a page at a random cursor', 'deep'],
    [`listTasks: an owner's newest ${LIST_LIMIT} FAILED`, 'failed'],
    [`listTasks: everyone's newest ${LIST_LIMIT} (admin)`, 'everyone'],
    ['listTasks: title search (q=) matching nothing, biggest owner', 'search'],
    ["listTaskEvents: a random task's history", 'historyRandom'],
    ["listTaskEvents: a recent task's history", 'historyNew'],
  ]
  table(
    ['query', ...sizeCols],
    listRows.map(([label, k]) => [
      label,
      ...stages.map((s) => `${fmt(s.list.big[k].p50)} / ${fmt(s.list.big[k].p99)} (${fmt(s.list.control[k].p50)} / ${fmt(s.list.control[k].p99)})`),
    ]),
  )

  line(
    `### 3. Retention: deleteFinishedTasks in batches of ${DEFAULT_BATCH}, no pause, for the oldest ${DEAD_SHARE * 100}% of tasks (autovacuum's trigger), then VACUUM`,
  )
  line()
  const rs = stages.filter((s) => s.retention)
  const rc = rs.map((s) => `at ${fmtInt(s.sizes.tasks)} tasks`)
  const R = (f: (x: Retention) => string) => rs.map((s) => f(s.retention!))
  table(
    ['', ...rc],
    [
      ['removed (besides the EXPLAINed batch)', ...R((x) => `${fmtInt(x.tasks)} tasks + ${fmtInt(x.events)} events in ${x.batches} batches`)],
      ['delete rate', ...R((x) => `${fmtInt((x.tasks / x.elapsedMs) * 1000)} tasks/s (${fmtInt(((x.tasks + x.events) / x.elapsedMs) * 1000)} rows/s)`)],
      ['batch p50 / p99', ...R((x) => `${fmt(x.batchP50)} / ${fmt(x.batchP99)} ms`)],
      ['delete: PG CPU per task', ...R((x) => `${fmt(x.cpuUs / x.tasks)} us`)],
      ['delete: WAL per task (after a checkpoint)', ...R((x) => fmtBytes(x.walBytes / x.tasks))],
      [
        'dead tuples left (tasks / events)',
        ...R((x) => `${fmtInt(x.after.tasksDead - x.before.tasksDead)} / ${fmtInt(x.after.eventsDead - x.before.eventsDead)}`),
      ],
      [
        'total size before / after delete / after VACUUM',
        ...R(
          (x) =>
            `${fmtBytes(x.before.tasksBytes + x.before.eventsBytes)} / ${fmtBytes(x.after.tasksBytes + x.after.eventsBytes)} / ${fmtBytes(x.vacuum.after.tasksBytes + x.vacuum.after.eventsBytes)}`,
        ),
      ],
      ['heap free space recorded after VACUUM (reusable, not returned)', ...R((x) => fmtBytes(x.vacuum.after.heapFree))],
      ['VACUUM tasks, task_events: time', ...R((x) => `${fmt(x.vacuum.elapsedMs / 1000)} s`)],
      ['VACUUM: PG CPU per removed task', ...R((x) => `${fmt(x.vacuum.cpuUs / x.tasks)} us`)],
      ['VACUUM: WAL per removed task', ...R((x) => fmtBytes(x.vacuum.walBytes / x.tasks))],
      [
        'one batch under EXPLAIN (ANALYZE, WAL): ms (tasks / events part)',
        ...R((x) => `${fmt(x.explain.ms)} (${fmt(x.explain.tasksMs)} / ${fmt(x.explain.eventsMs)})`),
      ],
      [
        "that batch's WAL (tasks / events part), full-page images",
        ...R(
          (x) =>
            `${fmtBytes(x.explain.tasksWal + x.explain.eventsWal)} (${fmtBytes(x.explain.tasksWal)} / ${fmtBytes(x.explain.eventsWal)}), ${fmtInt(x.explain.walFpi)} FPI`,
        ),
      ],
    ],
  )
  const t = r.retire
  line(
    `Instead, retiring a partition of as many rows (scratch tables shaped like tasks and task_events, indexes included, ` +
      `${fmtInt(t.tasks)} tasks + ${fmtInt(t.events)} events, ${fmtBytes(t.bytes)}):`,
  )
  line()
  const lastRet = rs.at(-1)!.retention!
  table(
    ['', 'time', 'WAL', 'dead tuples / VACUUM'],
    [
      [
        'retention path (delete + VACUUM)',
        `${fmt((lastRet.elapsedMs + lastRet.vacuum.elapsedMs) / 1000)} s`,
        fmtBytes(lastRet.walBytes + lastRet.vacuum.walBytes),
        `${fmtInt(lastRet.after.tasksDead - lastRet.before.tasksDead + lastRet.after.eventsDead - lastRet.before.eventsDead)} / needed`,
      ],
      ['DROP TABLE (both)', `${fmt(t.drop.ms)} ms`, fmtBytes(t.drop.walBytes), 'none; space back to the OS'],
      ['TRUNCATE (both)', `${fmt(t.truncate.ms)} ms`, fmtBytes(t.truncate.walBytes), 'none; space back to the OS'],
    ],
  )

  line('### 4. Sizes')
  line()
  const sized = stages.filter((s) => s.sizes.tasks > 10_000)
  const perM = (s: Stage, bytes: number) => (bytes / s.sizes.tasks) * 1e6
  table(
    ['relation: total (per million tasks)', ...sized.map((s) => `${fmtInt(s.sizes.tasks)} tasks`)],
    [
      ...['tasks', 'task_events'].flatMap((name) =>
        (['heap', 'toast', 'indexes', 'total'] as const).map((part) => [
          `${name} ${part}`,
          ...sized.map((s) => {
            const rel = s.sizes.rels.find((x) => x.name === name)!
            return `${fmtBytes(rel[part])} (${fmtBytes(perM(s, rel[part]))})`
          }),
        ]),
      ),
      [
        '**both, total**',
        ...sized.map((s) => {
          const all = s.sizes.rels.reduce((a, x) => a + x.total, 0)
          return `**${fmtBytes(all)} (${fmtBytes(perM(s, all))})**`
        }),
      ],
    ],
  )
  const big = sized.at(-1)!
  table(
    ['index', `size at ${fmtInt(big.sizes.tasks)} tasks`, 'per million tasks'],
    big.sizes.indexes.map((ix) => [`${ix.table}.${ix.name}`, fmtBytes(ix.bytes), fmtBytes(perM(big, ix.bytes))]),
  )

  // ------------------------------------------------------------ derived
  line('### Derived')
  line()
  const bytesPerTask = big.sizes.rels.reduce((a, x) => a + x.total, 0) / big.sizes.tasks
  const retCpu = (lastRet.cpuUs + lastRet.vacuum.cpuUs) / lastRet.tasks
  const retWal = (lastRet.walBytes + lastRet.vacuum.walBytes) / lastRet.tasks
  const hot64 = hotCpu(big.hot.big, 64)
  const hot1 = hotCpu(big.hot.big, 1)
  const ceiling = (DEFAULT_BATCH / (lastRet.batchP50 + WORKER_RETENTION_PAUSE_MS)) * 1000
  const retentionSeconds = RETENTION_DAYS * 86_400
  const rateFor = (bytes: number) => bytes / bytesPerTask / retentionSeconds
  const sb = r.settings.sbBytes
  line(
    `- **Retention's share of Postgres.** Deleting a task with its events and vacuuming after it costs ${fmt(retCpu)} us of Postgres CPU ` +
      `(${fmt(lastRet.cpuUs / lastRet.tasks)} delete + ${fmt(lastRet.vacuum.cpuUs / lastRet.tasks)} VACUUM) and ${fmtBytes(retWal)} of WAL, ` +
      `against ${fmt(hot64)} us for the task's whole lifecycle in batches of 64 (${fmt(hot1)} us one at a time). ` +
      `At steady state retention removes tasks as fast as they arrive, so it is ${fmt((100 * retCpu) / (retCpu + hot64), 2)}% of the Postgres CPU ` +
      `per task at any rate (${fmt((100 * retCpu) / (retCpu + hot1), 2)}% against unbatched statements). It takes 10% of one core at ` +
      `${fmtInt(0.1e6 / retCpu)} tasks/s sustained and 25% at ${fmtInt(0.25e6 / retCpu)} tasks/s; its WAL is ` +
      `${fmtBytes(retWal * 1000)}/s per 1,000 tasks/s.`,
  )
  line(
    `- **Retention's ceiling.** The worker deletes ${DEFAULT_BATCH} tasks per batch with a ${WORKER_RETENTION_PAUSE_MS} ms pause ` +
      `(batch p50 here ${fmt(lastRet.batchP50)} ms), so one pass keeps up with at most about ${fmtInt(ceiling)} tasks/s sustained; ` +
      `beyond that, or when the dead rows' VACUUM (which reads every index of both tables, whatever was deleted: ` +
      `${fmt(lastRet.vacuum.elapsedMs / 1000)} s here at ${fmtInt(big.sizes.tasks)} tasks) cannot keep up, dropping time partitions ` +
      `is the way out: ${fmt(t.drop.ms)} ms and ${fmtBytes(t.drop.walBytes)} of WAL for what the delete path did in ` +
      `${fmt((lastRet.elapsedMs + lastRet.vacuum.elapsedMs) / 1000)} s and ${fmtBytes(lastRet.walBytes + lastRet.vacuum.walBytes)}.`,
  )
  const rates = [10, 100, 1000, 5000]
  line(
    `- **Data size.** ${fmtBytes(bytesPerTask)} per finished task with its ${EVENTS_PER_TASK} events (tables, TOAST and indexes; ` +
      `${fmtBytes(bytesPerTask * 1e6)} per million). Kept ${RETENTION_DAYS} days (RETENTION_COMPLETED's default), a sustained rate of ` +
      rates.map((x) => `${fmtInt(x)} tasks/s holds ${fmtBytes(bytesPerTask * x * retentionSeconds)}`).join(', ') +
      `. The data exceeds this server's shared_buffers (${r.settings.sb}) from ${fmt(rateFor(sb), 2)} tasks/s, ` +
      `a 25%-of-RAM shared_buffers (${fmtBytes(ram / 4)}) from ${fmt(rateFor(ram / 4), 2)} tasks/s and this machine's RAM ` +
      `(${fmtBytes(ram)}) from ${fmt(rateFor(ram), 2)} tasks/s.`,
  )
  line(
    `- **Working set.** The hot path and the newest pages touch only the partial indexes (ready, waiting, leased: the live tasks) and the ` +
      `right-hand end of the others and of the heaps: at 1,000 tasks/s an hour of tasks is ${fmtBytes(bytesPerTask * 1000 * 3600)}. ` +
      `What reads the whole data set: a random task's history, deep pages, title searches (q=, which reads every task of the owner), ` +
      `retention (the oldest pages) and VACUUM (every index page). Those are the reads that fall to disk once the data outgrows RAM.`,
  )
  line()
  return out.join('\n')
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  let rows: number
  try {
    rows = parseRows(process.argv.slice(2))
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    console.error(`${e.message}\n${usage}`)
    return 2
  }
  const name = `taskline_pggrowth_${Date.now().toString(36)}_${crypto.randomUUID().slice(0, 8)}`
  let dbs: Pair<Db> | undefined
  let dropped = false
  const drop = async () => {
    if (dropped) return
    dropped = true
    // Force first: a query of ours still running (an interrupt) would keep destroy() waiting.
    await adminQuery(`drop database if exists ${name} with (force)`).then(
      () => log(`dropped ${name}`),
      (e) => console.error(`could not drop ${name}: ${e instanceof Error ? e.message : e}`),
    )
    await Promise.all([dbs?.big.destroy(), dbs?.control.destroy()].map((p) => p?.catch(() => {})))
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      log(`${sig}: dropping the scratch database`)
      void drop().finally(() => process.exit(130))
    })
  }
  try {
    await adminQuery(`create database ${name}`)
    log(`created ${name}`)
    // One connection each: every statement runs on the one backend whose CPU is counted.
    // The control schema is a second copy of the tables, in the same database, that stays small.
    const url = databaseUrl(name)
    const controlUrl = `${url}?options=${encodeURIComponent('-c search_path=control')}`
    dbs = { big: createDb(url, 1), control: createDb(controlUrl, 1) }
    const migrations = await readMigrations()
    await migrate(dbs.big, migrations)
    await sql`create schema control`.execute(dbs.big)
    await migrate(dbs.control, migrations)
    await sql`create extension if not exists pg_freespacemap`.execute(dbs.big).catch(() => log('no pg_freespacemap: free space figures will be n/a'))
    const text = await run(dbs, rows)
    console.log(text)
    return 0
  } catch (e) {
    console.error(e)
    return 1
  } finally {
    await drop()
  }
}

process.exit(await main())
