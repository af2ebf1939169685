import { sql, type Insertable } from 'kysely'
import type { ApiTokens } from '../../infra/database'
import type { Db } from '../../infra/db'

export function insertToken(db: Db, token: Insertable<ApiTokens>) {
  return db.insertInto('api_tokens').values(token).returning(['id', 'name', 'admin', 'rate_limit_per_sec', 'created_at']).executeTakeFirstOrThrow()
}

export function findActiveTokenById(db: Db, id: number) {
  return db
    .selectFrom('api_tokens')
    .select(['id', 'name', 'admin', 'rate_limit_per_sec', 'secret_hash'])
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
}

export function listTokens(db: Db) {
  return db.selectFrom('api_tokens').select(['id', 'name', 'admin', 'rate_limit_per_sec', 'created_at', 'revoked_at']).orderBy('id').execute()
}

export async function revokeTokenByName(db: Db, name: string): Promise<boolean> {
  const res = await db.updateTable('api_tokens').set({ revoked_at: sql`now()` }).where('name', '=', name).where('revoked_at', 'is', null).executeTakeFirst()
  return res.numUpdatedRows > 0n
}

/** Which of these token ids were revoked (or deleted): their open sockets must close. */
export async function findRevokedIds(db: Db, ids: number[]): Promise<number[]> {
  if (ids.length === 0) return []
  const active = await db.selectFrom('api_tokens').select('id').where('id', 'in', ids).where('revoked_at', 'is', null).execute()
  const ok = new Set(active.map((r) => r.id))
  return ids.filter((id) => !ok.has(id))
}
