import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import { createDb } from './db'

export interface Migration {
  name: string
  sql: string
}

export const migrationsDir = join(import.meta.dir, '../../db/migrations')

export async function readMigrations(dir = migrationsDir): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.sql')).sort()
  return Promise.all(names.map(async (name) => ({ name, sql: await Bun.file(join(dir, name)).text() })))
}

/**
 * The migrations this program carries: the compiled binary's embedded copy
 * (it has no db/ beside it), else db/migrations read from disk. The embedded
 * module is imported only in the binary: Bun runs no macro from node_modules,
 * where an installed package's `taskline migrate` runs from.
 */
export async function shippedMigrations(): Promise<readonly Migration[]> {
  if (import.meta.path.startsWith('/$bunfs/')) return (await import('./embedded-migrations')).embeddedMigrations
  return readMigrations()
}

// Any constant works; it only has to be the same for every migrating process.
const MIGRATION_LOCK = 72_616_283

/**
 * Applies each migration not yet in the ledger, in name order, one transaction
 * per file. A session advisory lock makes two concurrent runs take turns, so the
 * second sees the first's ledger rows and does nothing.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations run before the schema they create has types
export async function migrate(db: Kysely<any>, migrations: readonly Migration[]): Promise<string[]> {
  return db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK})`.execute(conn)
    try {
      await sql`create table if not exists taskline_migrations (
        name text primary key,
        applied_at timestamptz not null default now()
      )`.execute(conn)
      const applied: string[] = []
      for (const m of migrations) {
        const done = await conn.transaction().execute(async (trx) => {
          // Ledger row first: a concurrent runner without the lock would fail here.
          const inserted = await sql`insert into taskline_migrations (name) values (${m.name})
            on conflict do nothing returning name`.execute(trx)
          if (inserted.rows.length === 0) return false
          await sql.raw(m.sql).execute(trx)
          return true
        })
        if (done) applied.push(m.name)
      }
      return applied
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK})`.execute(conn)
    }
  })
}

/** Applies the migrations over a connection of its own, closed afterwards: what `migrate` and `all` do before anything else. */
export async function migrateDatabase(url: string, migrations: readonly Migration[]): Promise<string[]> {
  const db = createDb(url, 1)
  try {
    return await migrate(db, migrations)
  } finally {
    await db.destroy()
  }
}
