import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient } from 'kysely'
import pg from 'pg'
import type { DB } from './database'

export type Db = Kysely<DB>

// bigint ids come back as strings by default; ours stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v))
// bigint[] (depends_on) likewise.
const INT8_ARRAY = 1016 as Parameters<typeof pg.types.getTypeParser>[0]
const int8Strings = pg.types.getTypeParser(INT8_ARRAY) as (v: string) => string[]
pg.types.setTypeParser(INT8_ARRAY, (v: string) => int8Strings(v).map(Number))

export function createDb(url: string, poolSize = 10): Db {
  // No idle timeout: pg-pool would arm a timer on every release, a measurable
  // cost at thousands of queries a second, to save a few idle connections.
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5000, idleTimeoutMillis: 0 })
  // An idle client whose server went away emits 'error'; without a listener
  // that would crash the process instead of letting the pool replace it.
  pool.on('error', () => {})
  // A checked-out client has no pool listener, and Kysely adds none: a server
  // that goes away mid-query would emit an unhandled 'error' and kill the
  // process. The query itself still rejects, which is how callers learn of it.
  pool.on('connect', (client) => client.on('error', () => {}))
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool: preparingPool(pool, createStatementNames()) }) })
}

/**
 * Names for statements worth preparing. Postgres plans an unnamed statement
 * every time it runs; a named one is parsed and planned once per connection,
 * which for our CTE statements is a large part of their cost. A text is named the
 * second time it is seen (one-off texts stay unnamed), and only up to `max`
 * names, so statements whose text varies cannot fill the server's memory.
 */
export function createStatementNames(max = 200) {
  const seen = new Set<string>()
  const names = new Map<string, string>()
  return (text: string): string | undefined => {
    const name = names.get(text)
    if (name !== undefined || names.size >= max) return name
    if (!seen.has(text)) {
      if (seen.size < 10 * max) seen.add(text)
      return undefined
    }
    const fresh = `taskline_${names.size + 1}`
    names.set(text, fresh)
    return fresh
  }
}

/** Hands Kysely clients whose parameterised queries run as named (prepared) statements where nameFor says so. */
function preparingPool(pool: pg.Pool, nameFor: (text: string) => string | undefined): PostgresPool {
  // One wrapper per pg client: Kysely keys its connection objects by the client it is handed.
  const wrappers = new WeakMap<pg.PoolClient, PostgresPoolClient>()
  const wrap = (client: pg.PoolClient): PostgresPoolClient => ({
    query: ((textOrCursor: unknown, values?: unknown[]) => {
      // Statements without parameters go by the simple protocol (a migration file holds several); leave them be.
      if (typeof textOrCursor !== 'string' || !values?.length) return client.query(textOrCursor as never, values)
      const name = nameFor(textOrCursor)
      return client.query(name ? { name, text: textOrCursor, values } : { text: textOrCursor, values })
    }) as unknown as PostgresPoolClient['query'],
    release: (destroy?: boolean) => client.release(destroy),
  })
  return {
    async connect() {
      const client = await pool.connect()
      let wrapper = wrappers.get(client)
      if (!wrapper) wrappers.set(client, (wrapper = wrap(client)))
      return wrapper
    },
    end: () => pool.end(),
    options: pool.options,
  }
}
