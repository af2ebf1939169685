/** `bun run migrate`: db/migrations read from disk; the logic is in src/migrate-cli.ts, shared with `taskline migrate`. */
import { runMigrateCli } from '../src/migrate-cli'
import { readMigrations } from '../src/infra/migrator'

process.exit(await runMigrateCli(await readMigrations()))
