import { describe, expect, test } from 'bun:test'
import { sql } from 'kysely'
import { createDb, createStatementNames } from '../src/infra/db'
import { baseDatabaseUrl } from './helpers/env'

describe('statement names', () => {
  test('a text is named the second time it is seen, and keeps its name', () => {
    const nameFor = createStatementNames()
    expect(nameFor('select $1')).toBeUndefined()
    const name = nameFor('select $1')
    expect(name).toBeString()
    expect(nameFor('select $1')).toBe(name!)
    expect(nameFor('select $2')).toBeUndefined()
    expect(nameFor('select $2')).not.toBe(name!)
  })

  test('no more than max names: texts that vary cannot fill the server', () => {
    const nameFor = createStatementNames(3)
    const texts = Array.from({ length: 10 }, (_, i) => `select ${i}, $1`)
    for (const t of texts) nameFor(t)
    const named = texts.map((t) => nameFor(t)).filter((n) => n !== undefined)
    expect(new Set(named).size).toBe(3)
  })
})

describe('prepared statements in Postgres', () => {
  test('a parameterised query run again on a connection is prepared there, once', async () => {
    const db = createDb(baseDatabaseUrl, 1)
    try {
      const prepared = await db.connection().execute(async (conn) => {
        for (let i = 0; i < 3; i++) await sql`select ${i}::int + 1 as n`.execute(conn)
        const { rows } = await sql<{ statement: string }>`select statement from pg_prepared_statements`.execute(conn)
        return rows.map((r) => r.statement)
      })
      expect(prepared.filter((s) => s.includes('::int + 1 as n'))).toHaveLength(1)
    } finally {
      await db.destroy()
    }
  })
})
