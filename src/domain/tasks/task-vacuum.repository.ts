import { sql } from 'kysely'
import type { Db } from '../../infra/db'

/** One vacuum at a time across workers (see withSessionLock): its own number beside the migrator's, the sweeper's and retention's (72_616_283 to 72_616_285). */
export const VACUUM_LOCK = 72_616_286

/**
 * Milliseconds since tasks was last vacuumed by hand (by any worker; null if
 * never), and whether this user may vacuum it: anyone else's VACUUM is
 * skipped with only a warning. The table's owner (or a member of its role)
 * may; so may the database's owner up to Postgres 16, and from 17 whoever
 * holds MAINTAIN on the table (or pg_maintain). The CASE keeps Postgres 16 and
 * older from reading a privilege name they do not know.
 */
export async function taskTableState(db: Db): Promise<{ sinceVacuumMs: number | null; mayVacuum: boolean }> {
  const { rows } = await sql<{ since: number | null; may_vacuum: boolean }>`
    select (select extract(epoch from now() - last_vacuum) * 1000 from pg_stat_user_tables where relid = c.oid)::float8 as since,
           pg_has_role(c.relowner, 'USAGE') or case
             when current_setting('server_version_num')::int >= 170000 then has_table_privilege(c.oid, 'MAINTAIN')
             else pg_has_role((select datdba from pg_database where datname = current_database()), 'USAGE')
           end as may_vacuum
      from pg_class c where c.oid = 'tasks'::regclass`.execute(db)
  const since = rows[0]?.since
  return { sinceVacuumMs: since === null || since === undefined ? null : Number(since), mayVacuum: rows[0]?.may_vacuum === true }
}

/**
 * Vacuums the tables every task's changes churn (on one connection: VACUUM
 * cannot run in a transaction). Index cleanup is forced:
 * Postgres skips it when the dead rows sit in few pages, which is exactly a
 * queue's case, and the dead index entries are what cost.
 */
export async function vacuumTaskTables(conn: Db): Promise<void> {
  await sql`vacuum (index_cleanup on, skip_locked) tasks, task_count_deltas`.execute(conn)
}
