import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'kysely'
import { createDb } from '../src/infra/db'
import { createLogger } from '../src/infra/logger'
import { taskTableState } from '../src/domain/tasks/task-vacuum.repository'
import { TasksVacuum } from '../src/worker/vacuum'
import { admin } from './helpers/database'
import { eventually, startSystem, type TestSystem } from './helpers/system'

/**
 * A queue's claims walk the ready index from its oldest entries, which are the
 * tasks claimed since the last vacuum: the worker vacuums tasks often, one
 * worker at a time, so that walk stays short.
 */

let sys: TestSystem
beforeAll(async () => {
  sys = await startSystem({ apis: 0, workers: 0 })
})
afterAll(() => sys.stop())

const logger = createLogger('silent')
const vacuum = (intervalMs: number, db = sys.db) => new TasksVacuum({ db, logger, intervalMs })

/** Index pages (and heap pages behind them) the first probe of a claim reads to find the oldest ready task. */
async function pagesToFirstReadyTask(): Promise<number> {
  const { rows } = await sql<{ 'QUERY PLAN': { Plan: { 'Shared Hit Blocks': number; 'Shared Read Blocks': number } }[] }>`
    explain (analyze, buffers, format json)
    select id from tasks where status = 'PENDING' and enqueued_at is not null order by queue, coalesce(owner_id, 0) limit 1`.execute(sys.db)
  const plan = rows[0]!['QUERY PLAN'][0]!.Plan
  return plan['Shared Hit Blocks'] + plan['Shared Read Blocks']
}

const vacuumCount = async () =>
  Number((await sql<{ n: string }>`select vacuum_count as n from pg_stat_user_tables where relname = 'tasks'`.execute(sys.db)).rows[0]?.n ?? 0)

describe('the tasks vacuum', () => {
  test('after a vacuum, a claim finds the oldest ready task without walking the ones claimed before it', async () => {
    // Autovacuum must not clean up behind the test's back: what is measured is this vacuum.
    await sql`alter table tasks set (autovacuum_enabled = false)`.execute(sys.db)
    // 5,000 tasks made ready, claimed and finished, as a busy queue leaves them; then one ready task.
    await sql`insert into tasks (title, status, enqueued_at) select 'done ' || g, 'PENDING', now() from generate_series(1, 5000) g`.execute(sys.db)
    await sql`update tasks set status = 'PROCESSING', locked_by = 'w', locked_until = now() + interval '1 minute' where status = 'PENDING'`.execute(sys.db)
    await sql`update tasks set status = 'COMPLETED', finished_at = now(), locked_by = null, locked_until = null where status = 'PROCESSING'`.execute(sys.db)
    await sql`insert into tasks (title, status, enqueued_at) values ('ready', 'PENDING', now())`.execute(sys.db)
    const before = await pagesToFirstReadyTask()
    expect(await vacuum(1000).runOnce()).toBe(true)
    const after = await pagesToFirstReadyTask()
    // One index page per level and the row's heap page: a handful, against the dead entries' dozens.
    expect({ before: before > 20, after: after <= 5 }).toEqual({ before: true, after: true })
  })

  test('one vacuum per interval across workers, none while another worker holds the lock, and at most a tenth of the time', async () => {
    const first = vacuum(60_000)
    const otherDb = createDb(sys.database.url, 2)
    try {
      expect(await vacuum(1).runOnce()).toBe(true)
      // One worker just vacuumed: for an interval of a minute, neither it nor another worker vacuums again.
      const count = await vacuumCount()
      expect(await first.runOnce()).toBe(false)
      expect(await vacuum(60_000, otherDb).runOnce()).toBe(false)
      // With a short interval, a second worker holding the lock makes this one skip.
      await admin(async (c) => {
        await c.query('select pg_advisory_lock(72616286)')
        try {
          expect(await vacuum(1).runOnce()).toBe(false)
        } finally {
          await c.query('select pg_advisory_unlock(72616286)')
        }
      }, sys.database.url)
      expect(await vacuumCount()).toBe(count)
      const other = vacuum(1, otherDb)
      expect(await other.runOnce()).toBe(true)
      expect(await vacuumCount()).toBe(count + 1)
      // A worker that has vacuumed waits nine times that vacuum's length after anyone's, beyond a short interval:
      // vacuums take at most a tenth of the time, however many workers take turns.
      expect(other.gapMs).toBeGreaterThan(1)
      expect(vacuum(1).gapMs).toBe(1)
    } finally {
      await otherDb.destroy()
    }
  })

  test('a worker that found a vacuum due runs none if another finished one before it took the lock', async () => {
    const intervalMs = 3000
    const otherDb = createDb(sys.database.url, 2)
    try {
      // Due for a worker with this interval: the last vacuum is older than it.
      await eventually(async () => ((await taskTableState(sys.db)).sinceVacuumMs ?? Infinity) >= intervalMs, 20_000, 50, { what: 'the last vacuum to age' })
      const count = await vacuumCount()
      // Between this worker's first look and its lock, another worker vacuums.
      let raced = false
      const racing = sys.db.withPlugin({
        transformQuery: (args) => args.node,
        async transformResult(args) {
          if (!raced) {
            raced = true
            expect(await vacuum(1, otherDb).runOnce()).toBe(true)
          }
          return args.result
        },
      })
      expect(await vacuum(intervalMs, racing).runOnce()).toBe(false)
      expect(raced).toBe(true)
      expect(await vacuumCount()).toBe(count + 1)
    } finally {
      await otherDb.destroy()
    }
  }, 30_000)

  test('a vacuum skipped for a lock another session holds on tasks is not counted as one', async () => {
    const count = await vacuumCount()
    const skipped = vacuum(1)
    await admin(async (c) => {
      await c.query('begin')
      // What a running VACUUM or CREATE INDEX CONCURRENTLY holds: skip_locked makes ours pass tasks by.
      await c.query('lock table tasks in share update exclusive mode')
      try {
        expect(await skipped.runOnce()).toBe(false)
      } finally {
        await c.query('rollback')
      }
    }, sys.database.url)
    expect(await vacuumCount()).toBe(count)
    // It learnt no vacuum length to space the next by.
    expect(skipped.gapMs).toBe(1)
    expect(await skipped.runOnce()).toBe(true)
    expect(await vacuumCount()).toBe(count + 1)
  })

  test("only a user Postgres lets vacuum tries: the table's owner, or here (Postgres 16 and older) the database's", async () => {
    const suffix = sys.database.url.split('/').pop()!.replace(/\W/g, '_')
    const [dbOwner, stranger] = [`${suffix}_dbowner`, `${suffix}_stranger`]
    const asRole = (role: string) =>
      sys.db.connection().execute(async (conn) => {
        await sql`set role ${sql.id(role)}`.execute(conn)
        try {
          return (await taskTableState(conn)).mayVacuum
        } finally {
          await sql`reset role`.execute(conn)
        }
      })
    const database = sql.id(sys.database.url.split('/').pop()!)
    await sql`create role ${sql.id(dbOwner)}; create role ${sql.id(stranger)}`.execute(sys.db)
    try {
      expect(await asRole(stranger)).toBe(false)
      const version = Number((await sql<{ v: string }>`select current_setting('server_version_num') as v`.execute(sys.db)).rows[0]!.v)
      await sql`alter database ${database} owner to ${sql.id(dbOwner)}`.execute(sys.db)
      expect(await asRole(dbOwner)).toBe(version < 170000)
      // The worker warns once and vacuums nothing as a stranger.
      const warnings: string[] = []
      const strangerDb = { ...logger, warn: (m: string) => void warnings.push(m) }
      const v = sys.db.connection().execute(async (conn) => {
        await sql`set role ${sql.id(stranger)}`.execute(conn)
        try {
          const vac = new TasksVacuum({ db: conn, logger: strangerDb, intervalMs: 1 })
          return [await vac.runOnce(), await vac.runOnce()]
        } finally {
          await sql`reset role`.execute(conn)
        }
      })
      expect(await v).toEqual([false, false])
      expect(warnings).toHaveLength(1)
    } finally {
      await sql`alter database ${database} owner to current_user`.execute(sys.db)
      await sql`drop role ${sql.id(dbOwner)}; drop role ${sql.id(stranger)}`.execute(sys.db)
    }
  })

  test('a worker runs it on its own, at TASKS_VACUUM_INTERVAL_MS', async () => {
    const count = await vacuumCount()
    const worker = await sys.addWorker({ TASKS_VACUUM_INTERVAL_MS: 200 })
    try {
      await eventually(async () => (await vacuumCount()) >= count + 2, 15_000, 50, { what: 'two vacuums by the worker' })
    } finally {
      await worker.close()
    }
  })
})
