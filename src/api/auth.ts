import type { Context, MiddlewareHandler } from 'hono'
import type { Db } from '../infra/db'
import { anonymous, parseToken, type Principal } from '../domain/tokens/token'
import { verifyToken } from '../domain/tokens/token.service'
import { socketProtocol } from '../client/socket-protocol'
import { DomainError } from '../domain/errors'
import { createGenerationalMap } from '../infra/generational-map'
import { createAuthThrottle, type AuthThrottle } from './auth-throttle'
import { clientAddress } from './client-address'
import { errorBody } from './error-handler'

export type AuthMode = 'required' | 'off'

/** Hono's context variables, for every route behind authenticate(). */
export type AppEnv = {
  Variables: {
    principal: Principal
    /** Set once Bun has taken the request as a WebSocket: it answers 101, not the 200 the app returns. */
    upgraded?: boolean
    /** The peer's address, read once per request (see clientAddress). */
    address?: string
  }
}

export class UnauthorizedError extends DomainError {
  constructor(reason: string) {
    super(
      'unauthorized',
      `${reason}: send "Authorization: Bearer <token>" (WebSocket upgrades: Sec-WebSocket-Protocol "${socketProtocol}, <token>" or ?token=); create one with: bun run token create --name NAME`,
    )
  }
}

/**
 * Verifies tokens against Postgres, remembering each answer for ttlMs so a
 * busy client costs one lookup per window: a revoked token stops working on
 * every instance within that window. Tokens that were valid once and tokens
 * never valid are kept apart, each bounded (at least maxEntries answers, at
 * most twice as many), so a flood of made-up tokens cannot push a real
 * user's answer out.
 */
export function createTokenVerifier(db: Db, ttlMs = 2000, maxEntries = 10_000) {
  const known = createGenerationalMap<string, { principal: Principal | null; until: number }>(maxEntries)
  const unknown = createGenerationalMap<string, number>(maxEntries)
  // One lookup per token at a time: a burst of one client's requests on a cold cache waits for the same answer.
  const inFlight = new Map<string, Promise<Principal | null>>()
  const cachedAnswer = (token: string): { principal: Principal | null } | null => {
    const hit = known.get(token)
    if (hit && hit.until > Date.now()) return hit
    if (!hit && (unknown.peek(token) ?? 0) > Date.now()) return { principal: null }
    return null
  }
  async function lookUp(token: string): Promise<Principal | null> {
    const principal = await verifyToken(db, token)
    const until = Date.now() + ttlMs
    if (principal || known.peek(token)) known.set(token, { principal, until })
    else unknown.set(token, until)
    return principal
  }
  const verifier = async function verify(token: string, around: LookupWrapper = (lookup) => lookup()): Promise<Principal | null> {
    const cached = cachedAnswer(token)
    if (cached) return cached.principal
    // A string that is not even shaped like a token never costs a query or a cache slot.
    if (!parseToken(token)) return null
    let lookup = inFlight.get(token)
    if (!lookup) {
      lookup = around(() => lookUp(token)).finally(() => inFlight.delete(token))
      inFlight.set(token, lookup)
    }
    return lookup
  }
  /** How many answers are remembered (for tests of the bound). */
  verifier.cached = () => known.size + unknown.size
  verifier.seenValid = (token: string) => Boolean(known.peek(token)?.principal)
  return verifier
}

/** Wraps a Postgres lookup the verifier is about to start (the throttle counts it while it runs); cache hits never reach it. */
export type LookupWrapper = (lookup: () => Promise<Principal | null>) => Promise<Principal | null>

export interface TokenVerifier {
  (token: string, around?: LookupWrapper): Promise<Principal | null>
  /** Whether the token was valid when this process last looked it up (however long ago): such a token is never throttled. */
  seenValid?(token: string): boolean
}

/**
 * Where a client may put its token: the Authorization header; for a WebSocket
 * upgrade also a Sec-WebSocket-Protocol entry (browsers cannot set headers on
 * a WebSocket) or ?token= on the URL.
 */
export function presentedToken(c: Context): string | null {
  const auth = c.req.header('authorization')
  if (auth) return /^Bearer\s+(\S+)$/i.exec(auth)?.[1] ?? ''
  if (!isSocketUpgrade(c)) return null
  const protocols =
    c.req
      .header('sec-websocket-protocol')
      ?.split(',')
      .map((p) => p.trim()) ?? []
  // Whatever follows the fixed name is what the client meant as its token: a wrong one is refused as invalid, not as missing.
  const name = protocols.indexOf(socketProtocol)
  const afterName = name >= 0 ? protocols[name + 1] : undefined
  return protocols.find((p) => p.startsWith('tl_')) ?? afterName ?? c.req.query('token') ?? null
}

/**
 * Only a GET upgrade on a socket route may carry its token outside the
 * Authorization header: anywhere else a header saying "websocket" would let
 * a URL or subprotocol token drive the HTTP API.
 */
function isSocketUpgrade(c: Context): boolean {
  return c.req.method === 'GET' && c.req.path.startsWith('/ws/') && c.req.header('upgrade')?.toLowerCase() === 'websocket'
}

/**
 * An address that presented too many refused tokens gets 429 without a
 * lookup, so guessing costs no Postgres work; a token valid at its last
 * lookup still passes, so a user sharing the address (NAT) is not locked out.
 */
export function authenticate(o: { mode: AuthMode; verify: TokenVerifier; throttle?: AuthThrottle }): MiddlewareHandler<AppEnv> {
  const throttle = o.throttle ?? createAuthThrottle()
  return async function authenticate(c, next) {
    if (o.mode === 'off') {
      c.set('principal', anonymous)
      return next()
    }
    const token = presentedToken(c)
    if (token === null) throw new UnauthorizedError('an API token is required')
    const address = clientAddress(c)
    const waitMs = o.verify.seenValid?.(token) ? 0 : throttle.blockedForMs(address)
    if (waitMs > 0) return refusedTooOften(c, waitMs)
    const principal = await o.verify(token, (lookup) => throttle.track(address, lookup))
    if (!principal) {
      throttle.recordFailure(address)
      throw new UnauthorizedError('the API token is invalid or revoked')
    }
    c.set('principal', principal)
    await next()
  }
}

function refusedTooOften(c: Context, waitMs: number): Response {
  const seconds = Math.ceil(waitMs / 1000)
  c.header('Retry-After', String(seconds))
  return c.json(errorBody('rate_limited', `too many refused tokens from this address; retry after ${seconds} s`), 429)
}
