import type { Db } from '../../infra/db'
import { ConflictError } from '../errors'
import { formatToken, generateSecret, hashSecret, parseToken, secretMatches, type Principal } from './token'
import * as repo from './token.repository'

/** Creates a token and returns it in full: the only time the secret exists outside the caller's hands. */
export async function createToken(db: Db, name: string, admin: boolean, rateLimitPerSec: number | null = null) {
  const secret = generateSecret()
  try {
    const row = await repo.insertToken(db, { name, secret_hash: hashSecret(secret), admin, rate_limit_per_sec: rateLimitPerSec })
    return { ...row, token: formatToken(row.id, secret) }
  } catch (e) {
    if ((e as { code?: string }).code === '23505') throw new ConflictError(`a token named "${name}" exists already`)
    throw e
  }
}

/** The principal a presented token stands for, or null for a malformed, unknown, wrong or revoked one. */
export async function verifyToken(db: Db, token: string): Promise<Principal | null> {
  const parsed = parseToken(token)
  if (!parsed) return null
  const row = await repo.findActiveTokenById(db, parsed.id)
  if (!row || !secretMatches(parsed.secret, row.secret_hash)) return null
  return { ownerId: row.id, admin: row.admin, name: row.name, rateLimitPerSec: row.rate_limit_per_sec }
}
