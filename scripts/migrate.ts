import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { loadConfig } from '../src/config'
import { migrate, readMigrations } from '../src/infra/migrator'

const config = loadConfig()
const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 1 })
const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) })
try {
  const applied = await migrate(db, await readMigrations())
  console.log(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date')
} catch (e) {
  console.error(`migrate failed: ${e instanceof Error ? e.message : String(e)}`)
  process.exitCode = 1
} finally {
  await db.destroy()
}
