import { sql } from 'kysely'
import type { Db } from '../../infra/db'
import { TYPE_LIVENESS_MS, type TaskTypeRegistration } from './task-type'

/** A worker's types: each type's schema (the last worker to register a different one sets it) and a row saying this worker handles it, seen now. */
export async function registerWorkerTypes(db: Db, workerId: string, types: readonly TaskTypeRegistration[]): Promise<void> {
  if (types.length === 0) return
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('task_types')
      .values(types.map((t) => ({ name: t.name, payload_schema: JSON.stringify(t.payloadSchema), timeout_ms: t.timeoutMs })))
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet((eb) => ({
            payload_schema: eb.ref('excluded.payload_schema'),
            timeout_ms: eb.ref('excluded.timeout_ms'),
            updated_at: sql`now()`,
          }))
          // Only a real change moves updated_at: the API recompiles a type's validator when it does.
          .where(sql<boolean>`(task_types.payload_schema, task_types.timeout_ms) is distinct from (excluded.payload_schema, excluded.timeout_ms)`),
      )
      .execute()
    await trx
      .insertInto('task_type_workers')
      .values(types.map((t) => ({ type: t.name, worker_id: workerId })))
      .onConflict((oc) => oc.columns(['type', 'worker_id']).doUpdateSet({ last_seen_at: sql`now()` }))
      .execute()
  })
}

/** The worker stops: it handles nothing any more. The types themselves stay known. */
export async function forgetWorkerTypes(db: Db, workerId: string): Promise<void> {
  await db.deleteFrom('task_type_workers').where('worker_id', '=', workerId).execute()
}

/**
 * Removes a registered type nobody handles any more;
 * a live worker's type is kept, and those workers named. The type's row is
 * locked first, so a worker registering it meanwhile either comes before (and
 * is named) or after (and registers it anew).
 */
export async function deleteRegisteredType(db: Db, name: string): Promise<'deleted' | 'unknown' | { liveWorkers: string[] }> {
  return db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('task_types').select('name').where('name', '=', name).forUpdate().executeTakeFirst()
    if (!row) return 'unknown'
    // The same liveness as the list's `handled`, so a type listed as handled is never deleted.
    const [listed] = await listRegisteredTypes(trx, [name])
    if (listed?.workers.length) return { liveWorkers: listed.workers.map((w) => w.worker_id) }
    // Its stale worker rows go with it (ON DELETE CASCADE).
    await trx.deleteFrom('task_types').where('name', '=', name).execute()
    return 'deleted'
  })
}

export interface RegisteredType {
  name: string
  payload_schema: Record<string, unknown>
  timeout_ms: number | null
  updated_at: Date
  workers: { worker_id: string; last_seen_at: Date }[]
}

/** Every registered type, with the workers seen recently enough to count as live, by name. */
export async function listRegisteredTypes(db: Db, names?: readonly string[]): Promise<RegisteredType[]> {
  const liveSince = sql<Date>`now() - make_interval(secs => ${TYPE_LIVENESS_MS / 1000})`
  const rows = await db
    .selectFrom('task_types as t')
    .leftJoin('task_type_workers as w', (j) => j.onRef('w.type', '=', 't.name').on('w.last_seen_at', '>', liveSince))
    .select(['t.name', 't.payload_schema', 't.timeout_ms', 't.updated_at', 'w.worker_id', 'w.last_seen_at'])
    .$if(names !== undefined, (qb) => qb.where('t.name', '=', sql<string>`any(${names}::text[])`))
    .orderBy('t.name')
    .orderBy('w.worker_id')
    .execute()
  const byName = new Map<string, RegisteredType>()
  for (const r of rows) {
    let t = byName.get(r.name)
    if (!t) {
      t = { name: r.name, payload_schema: r.payload_schema as Record<string, unknown>, timeout_ms: r.timeout_ms, updated_at: r.updated_at, workers: [] }
      byName.set(r.name, t)
    }
    if (r.worker_id !== null && r.last_seen_at !== null) t.workers.push({ worker_id: r.worker_id, last_seen_at: r.last_seen_at })
  }
  return [...byName.values()]
}
