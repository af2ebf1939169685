/**
 * `taskline migrate`: the migrations embedded in the binary, applied to
 * DATABASE_URL, with the same output and exit codes as `bun run migrate`
 * (src/bin/migrate.ts, which reads db/migrations from disk instead).
 */
import { configSchema, ConfigError, loadConfig } from '../config'
import { embeddedMigrations, migrateDatabase, type Migration } from '../infra/migrator'

export async function runMigrateCli(
  migrations: readonly Migration[] = embeddedMigrations,
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
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
    const applied = await migrateDatabase(url, migrations)
    console.log(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date')
    return 0
  } catch (e) {
    console.error(`taskline migrate: failed: ${e instanceof Error ? e.message : String(e)}`)
    return 1
  }
}
