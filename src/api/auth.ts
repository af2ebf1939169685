import type { Context, MiddlewareHandler } from 'hono'
import type { Db } from '../infra/db'
import { anonymous, parseToken, type Principal } from '../domain/tokens/token'
import { verifyToken } from '../domain/tokens/token.service'
import { DomainError } from '../domain/errors'
import { createGenerationalMap } from '../infra/generational-map'

export type AuthMode = 'required' | 'off'

/** Hono's context variables, for every route behind authenticate(). */
export type AppEnv = { Variables: { principal: Principal } }

export class UnauthorizedError extends DomainError {
  constructor(reason: string) {
    super(
      'unauthorized',
      `${reason}: send "Authorization: Bearer <token>" (WebSockets: the token as a Sec-WebSocket-Protocol or ?token=); create one with: bun run token create --name NAME`,
    )
  }
}

/**
 * Verifies tokens against Postgres, remembering each answer for ttlMs so a
 * busy client costs one lookup per window: a revoked token stops working on
 * every instance within that window. At least maxEntries answers are kept,
 * at most twice as many.
 */
export function createTokenVerifier(db: Db, ttlMs = 2000, maxEntries = 10_000) {
  const cache = createGenerationalMap<string, { principal: Principal | null; until: number }>(maxEntries)
  const verifier = async function verify(token: string): Promise<Principal | null> {
    const hit = cache.get(token)
    if (hit && hit.until > Date.now()) return hit.principal
    // A string that is not even shaped like a token never costs a query or a cache slot.
    if (!parseToken(token)) return null
    const principal = await verifyToken(db, token)
    cache.set(token, { principal, until: Date.now() + ttlMs })
    return principal
  }
  /** How many answers are remembered (for tests of the bound). */
  verifier.cached = () => cache.size
  return verifier
}

export type TokenVerifier = (token: string) => Promise<Principal | null>

/**
 * Where a client may put its token: the Authorization header; for a WebSocket
 * upgrade also a Sec-WebSocket-Protocol entry (browsers cannot set headers on
 * a WebSocket) or ?token= on the URL.
 */
export function presentedToken(c: Context): string | null {
  const auth = c.req.header('authorization')
  if (auth) return /^Bearer\s+(\S+)$/i.exec(auth)?.[1] ?? ''
  if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') return null
  const protocols = c.req.header('sec-websocket-protocol')?.split(',').map((p) => p.trim()) ?? []
  return protocols.find((p) => p.startsWith('tl_')) ?? c.req.query('token') ?? null
}

export function authenticate(o: { mode: AuthMode; verify: TokenVerifier }): MiddlewareHandler<AppEnv> {
  return async function authenticate(c, next) {
    if (o.mode === 'off') {
      c.set('principal', anonymous)
      return next()
    }
    const token = presentedToken(c)
    if (token === null) throw new UnauthorizedError('an API token is required')
    const principal = await o.verify(token)
    if (!principal) throw new UnauthorizedError('the API token is invalid or revoked')
    c.set('principal', principal)
    await next()
  }
}
