import pg from 'pg'
import { sql, type InsertObject } from 'kysely'
import { createDb, type Db } from '../../src/infra/db'
import type { DB } from '../../src/infra/database'
import { withEvents } from '../../src/domain/task-events/task-event.repository'
import type { TaskChange } from '../../src/domain/task-events/task-event'
import { migrate, readMigrations } from '../../src/infra/migrator'
import { baseDatabaseUrl, databaseUrl, uniqueName } from './env'

/** Runs fn on a connection of its own (to the admin database unless url says otherwise). */
export async function admin<T>(fn: (c: pg.Client) => Promise<T>, url = baseDatabaseUrl): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

export interface TestDatabase {
  url: string
  db: Db
  drop(): Promise<void>
}

/** A fresh, migrated database of its own; drop() removes it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = uniqueName('taskline_test')
  await admin((c) => c.query(`create database ${name}`))
  const url = databaseUrl(name)
  const db = createDb(url, 5)
  await migrate(db, await readMigrations())
  return {
    url,
    db,
    async drop() {
      await db.destroy()
      await admin((c) => c.query(`drop database if exists ${name} with (force)`))
    },
  }
}

/** An empty database, for tests of the migrate command itself; drop() removes it. */
export async function createEmptyDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = uniqueName('taskline_test')
  await admin((c) => c.query(`create database ${name}`))
  return {
    url: databaseUrl(name),
    drop: () => admin((c) => c.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  }
}

/**
 * Inserts tasks in any state (a PROCESSING row of a dead worker, a row never
 * queued) with their first events, the way the service's own insert would have.
 */
export async function insertTaskRows(db: Db, values: InsertObject<DB, 'tasks'>[]): Promise<TaskChange[]> {
  const { rows } = await withEvents(sql`changed as (${db.insertInto('tasks').values(values).returningAll()})`, sql`null`).execute(db)
  return rows
}
