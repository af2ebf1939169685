import { createGenerationalMap } from '../infra/generational-map'

export interface AuthThrottleOptions {
  /** Refused tokens one address may present per window before it is refused without a lookup. */
  maxFailures: number
  windowMs: number
  /** Addresses remembered: at least this many, at most twice as many. */
  maxAddresses: number
}

export const defaultAuthThrottle: AuthThrottleOptions = { maxFailures: 20, windowMs: 10_000, maxAddresses: 10_000 }

/**
 * Counts refused tokens per client address in fixed windows, in this
 * process's memory rather than Redis: the check sits in front of every
 * token lookup, so it must cost no round trip, and what it protects is this
 * instance's own Postgres pool, so a per-instance budget is enough. It also
 * keeps holding when Redis is away, where the request limiter lets all through.
 */
export function createAuthThrottle(o: AuthThrottleOptions = defaultAuthThrottle) {
  const windows = createGenerationalMap<string, { count: number; resetAt: number }>(o.maxAddresses)

  function current(address: string, now: number) {
    const w = windows.peek(address)
    return w && now < w.resetAt ? w : null
  }

  return {
    /** How long this address must wait before its next token is looked up; 0 when it may go on. */
    blockedForMs(address: string, now = Date.now()): number {
      const w = current(address, now)
      return w && w.count >= o.maxFailures ? w.resetAt - now : 0
    },
    recordFailure(address: string, now = Date.now()): void {
      const w = current(address, now) ?? { count: 0, resetAt: now + o.windowMs }
      w.count++
      windows.set(address, w)
    },
  }
}

export type AuthThrottle = ReturnType<typeof createAuthThrottle>
