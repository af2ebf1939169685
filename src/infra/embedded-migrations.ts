import type { Migration } from './migrator'
import { migrationFiles } from './migrations.macro' with { type: 'macro' }

/**
 * db/migrations as it was when this module was transpiled (see migrations.macro.ts):
 * what the compiled binary applies. Same names, order and text as
 * readMigrations() on the same checkout.
 */
export const embeddedMigrations: readonly Migration[] = migrationFiles()
