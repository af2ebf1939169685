import { configSchema, ConfigError, loadConfig } from '../src/config'
import { createDb } from '../src/infra/db'
import { migrate, readMigrations } from '../src/infra/migrator'

// Only the database matters here: an unrelated bad setting must not block migrations.
let url: string
try {
  url = loadConfig(process.env, configSchema.pick({ DATABASE_URL: true })).DATABASE_URL
} catch (e) {
  if (!(e instanceof ConfigError)) throw e
  console.error(`taskline migrate: ${e.message}`)
  process.exit(2)
}
const db = createDb(url, 1)
try {
  const applied = await migrate(db, await readMigrations())
  console.log(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date')
} catch (e) {
  console.error(`taskline migrate: failed: ${e instanceof Error ? e.message : String(e)}`)
  process.exitCode = 1
} finally {
  await db.destroy()
}
