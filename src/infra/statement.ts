import type { CompiledQuery, QueryResult, RawBuilder } from 'kysely'
import type { Db } from './db'

/** Where each run's own value goes in a statement built once. */
class Slot {
  constructor(readonly name: string) {}
}

/** Runs the statement with these values in its slots. */
export type Statement<K extends string, R> = (db: Db, values: Record<K, unknown>) => Promise<QueryResult<R>>

/**
 * A statement built and compiled once, when it first runs, then run with each
 * call's values put in its slots. Building SQL with the sql tag and compiling
 * it allocate and walk a node per fragment and value, every time: for the
 * statements that run once per batch of tasks, that is a share of the CPU
 * each task costs. Any value not given as a slot is fixed by the first build.
 * All our databases are Postgres, so the compiled text suits every Db; one
 * with plugins (tests watching queries) gets the statement built each time,
 * so its plugins see every query as before.
 */
export function compileOnce<K extends string, R>(build: (slot: (name: K) => unknown) => RawBuilder<R>): Statement<K, R> {
  let compiled: CompiledQuery<R> | undefined
  return (db, values) => {
    if (db.getExecutor().plugins.length > 0) return build((name) => values[name]).execute(db)
    compiled ??= build((name) => new Slot(name)).compile(db)
    const parameters = compiled.parameters.map((p) => (p instanceof Slot ? values[p.name as K] : p))
    return db.executeQuery({ ...compiled, parameters })
  }
}
