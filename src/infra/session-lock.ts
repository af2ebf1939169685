import { sql } from 'kysely'
import type { Db } from './db'

/**
 * Runs fn on one connection of db while holding a session advisory lock on
 * it, or returns null at once when someone else holds the lock. A session
 * lock rather than a transaction's, for work that spans many short
 * transactions or cannot run in one (VACUUM); a worker that dies loses its
 * connection, and with it the lock.
 */
export function withSessionLock<T>(db: Db, key: number, fn: (conn: Db) => Promise<T>): Promise<T | null> {
  return db.connection().execute(async (conn) => {
    const row = await conn.selectNoFrom(sql<boolean>`pg_try_advisory_lock(${key})`.as('locked')).executeTakeFirst()
    if (row?.locked !== true) return null
    try {
      return await fn(conn)
    } finally {
      await sql`select pg_advisory_unlock(${key})`.execute(conn)
    }
  })
}
