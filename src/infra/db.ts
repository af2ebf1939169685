import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { DB } from './database'

export type Db = Kysely<DB>

// bigint ids come back as strings by default; ours stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v))

export function createDb(url: string, poolSize = 10): Db {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5000 })
  // An idle client whose server went away emits 'error'; without a listener
  // that would crash the process instead of letting the pool replace it.
  pool.on('error', () => {})
  // A checked-out client has no pool listener, and Kysely adds none: a server
  // that goes away mid-query would emit an unhandled 'error' and kill the
  // process. The query itself still rejects, which is how callers learn of it.
  pool.on('connect', (client) => client.on('error', () => {}))
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) })
}
