import pg from 'pg'
import { createDb, type Db } from '../../src/infra/db'
import { migrate, readMigrations } from '../../src/infra/migrator'
import { baseDatabaseUrl, databaseUrl, uniqueName } from './env'

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: baseDatabaseUrl })
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
