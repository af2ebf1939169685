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
  // Lookups still running count against the budget too, or a burst sent at once would all be looked up before the first failed.
  const running = new Map<string, number>()

  function current(address: string, now: number) {
    const w = windows.peek(address)
    return w && now < w.resetAt ? w : null
  }

  return {
    /** How long this address must wait before its next token is looked up; 0 when it may go on. */
    blockedForMs(address: string, now = Date.now()): number {
      const w = current(address, now)
      if ((w?.count ?? 0) + (running.get(address) ?? 0) < o.maxFailures) return 0
      return w ? w.resetAt - now : 1000
    },
    recordFailure(address: string, now = Date.now()): void {
      const w = current(address, now) ?? { count: 0, resetAt: now + o.windowMs }
      w.count++
      windows.set(address, w)
    },
    /** Runs one lookup for this address, counted while it runs. */
    async track<T>(address: string, lookup: () => Promise<T>): Promise<T> {
      running.set(address, (running.get(address) ?? 0) + 1)
      try {
        return await lookup()
      } finally {
        const left = running.get(address)! - 1
        if (left === 0) running.delete(address)
        else running.set(address, left)
      }
    },
  }
}

export type AuthThrottle = ReturnType<typeof createAuthThrottle>
