/** `bun run migrate`: `taskline migrate` with db/migrations read from disk, so a new file needs no build. */
import { runMigrateCli } from '../commands/migrate'
import { readMigrations } from '../infra/migrator'

process.exit(await runMigrateCli(await readMigrations()))
