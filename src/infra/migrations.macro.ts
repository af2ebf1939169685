/**
 * A Bun macro: migrator.ts imports it `with { type: 'macro' }`, so this runs
 * inside the transpiler and its result is inlined as a literal. That is how
 * `bun build --compile` embeds db/migrations in the binary while the .sql files
 * stay the only source (no generated index to forget to regenerate). Under
 * `bun run` the transpiler runs it too, so both read the same directory.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

// Synchronous on purpose: the transpiler waits for a macro anyway, and a plain
// array of {name, sql} is what it can serialise.
export function migrationFiles(): { name: string; sql: string }[] {
  const dir = join(import.meta.dir, '../../db/migrations')
  return readdirSync(dir)
    .filter((n) => n.endsWith('.sql'))
    .sort()
    .map((name) => ({ name, sql: readFileSync(join(dir, name), 'utf8') }))
}
