import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'

/**
 * Who is asking. `ownerId` is the token id tasks are stored under (null when
 * AUTH=off); an admin sees every owner's tasks.
 */
export interface Principal {
  ownerId: number | null
  admin: boolean
  name: string
  /** This token's requests per second, overriding RATE_LIMIT_PER_SEC (0: no limit); null follows the setting. */
  rateLimitPerSec: number | null
}

export const anonymous: Principal = Object.freeze({ ownerId: null, admin: true, name: 'anonymous', rateLimitPerSec: null })

export const tokenNameSchema = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'name must be 1 to 64 letters, digits, _ . or -')

// tl_<id>_<43 base64url chars = 32 random bytes>: the id finds the row, the secret proves it.
// The id is canonical (no leading zero), so each token has one spelling and one cache entry.
const TOKEN_RE = /^tl_([1-9]\d{0,14})_([A-Za-z0-9_-]{43})$/

export function generateSecret(): string {
  return randomBytes(32).toString('base64url')
}

export const formatToken = (id: number, secret: string) => `tl_${id}_${secret}`

export function parseToken(token: string): { id: number; secret: string } | null {
  const m = TOKEN_RE.exec(token)
  return m ? { id: Number(m[1]), secret: m[2]! } : null
}

export const hashSecret = (secret: string): Buffer => createHash('sha256').update(secret).digest()

/** Constant-time, so response timing says nothing about how much of a guess was right. */
export function secretMatches(secret: string, storedHash: Uint8Array): boolean {
  const hash = hashSecret(secret)
  return hash.length === storedHash.length && timingSafeEqual(hash, storedHash)
}
