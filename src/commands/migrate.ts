/**
 * `taskline migrate`: the migrations this program carries (embedded in the
 * binary, read from db/migrations otherwise) applied to DATABASE_URL.
 */
import { configSchema, ConfigError, loadConfig } from '../config'
import { migrateDatabase, shippedMigrations, type Migration } from '../infra/migrator'

export async function runMigrateCli(migrations?: readonly Migration[], env: Record<string, string | undefined> = process.env): Promise<number> {
  // Only the database matters here: an unrelated bad setting must not block migrations.
  let url: string
  try {
    url = loadConfig(env, configSchema.pick({ DATABASE_URL: true })).DATABASE_URL
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e
    console.error(`taskline migrate: ${e.message}`)
    return 2
  }
  try {
    const applied = await migrateDatabase(url, migrations ?? (await shippedMigrations()))
    console.log(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date')
    return 0
  } catch (e) {
    console.error(`taskline migrate: failed: ${e instanceof Error ? e.message : String(e)}`)
    return 1
  }
}
