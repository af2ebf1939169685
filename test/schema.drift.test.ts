import { describe, expect, test } from 'bun:test'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { baseDatabaseUrl } from './helpers/env'

/** The schema's statements only: session settings and blank lines vary with pg_dump's version, not with the schema. */
const statements = (sqlText: string) =>
  sqlText
    .split('\n')
    .filter((line) => line.trim() !== '' && !/^(SET |SELECT pg_catalog\.set_config|\\(un)?restrict )/.test(line))
    .join('\n')

describe('generated files match the migrations', () => {
  test('db/schema.sql and the Kysely types are what `bun run db:types` makes from db/migrations', () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskline-schema-'))
    try {
      const env = { ...process.env, DATABASE_URL: baseDatabaseUrl, TYPES_OUT: join(dir, 'database.ts'), SCHEMA_OUT: join(dir, 'schema.sql') }
      const run = Bun.spawnSync(['bash', 'scripts/gen-db-types.sh'], { env, stdout: 'pipe', stderr: 'pipe' })
      expect({ exitCode: run.exitCode, stderr: run.stderr.toString().slice(-2000) }).toMatchObject({ exitCode: 0 })
      // A migration added without `bun run db:types` leaves these behind.
      expect(statements(readFileSync(join(dir, 'schema.sql'), 'utf8'))).toBe(statements(readFileSync('db/schema.sql', 'utf8')))
      expect(readFileSync(join(dir, 'database.ts'), 'utf8')).toBe(readFileSync('src/infra/database.ts', 'utf8'))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
