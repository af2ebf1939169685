import type { MiddlewareHandler } from 'hono'
import type { Logger } from '../infra/logger'
import type { Redis } from '../infra/redis'
import type { AppEnv } from './auth'
import { clientAddress } from './client-address'
import { errorBody } from './error-handler'

/** What this instance holds of one client's budget for the current second. */
interface Allowance {
  second: number
  /** Requests this instance may let through this second (claimed from Redis). */
  granted: number
  used: number
  /** Redis said the budget is spent: no more claims this second. */
  spent: boolean
  /** The claim in flight: requests that arrive meanwhile wait for the same one. */
  claiming: Promise<void> | null
}

/** How many requests one claim takes: one round trip per share, and a share small enough that instances split a second fairly. */
const shareOf = (limit: number) => Math.max(1, Math.floor(limit / 20))

/**
 * Fixed one-second windows counted in Redis, so the limit holds across every
 * API instance: per token (its own limit, or `perSecond`), or per client
 * address when AUTH=off. An instance claims a share of the second's budget
 * at a time (INCRBY) and lets requests through locally until it is used, so
 * a busy client costs one round trip per share, not per request; small
 * limits are counted request by request. If Redis is away the request is let
 * through: availability beats precision here.
 */
export function rateLimit(o: { redis: Redis; prefix: string; perSecond: number; logger: Logger }): MiddlewareHandler<AppEnv> {
  let warned = false
  const allowances = new Map<string, Allowance>()
  let sweptAt = 0

  /** Claims one more share of `who`'s budget for this second. */
  async function claim(who: string, a: Allowance, limit: number): Promise<void> {
    const share = shareOf(limit)
    const key = `${o.prefix}rate:${who}:${a.second}`
    try {
      const res = await o.redis.pipeline().incrby(key, share).pexpire(key, 2000).exec()
      const total = Number(res?.[0]?.[1] ?? 0)
      const granted = Math.max(0, Math.min(share, limit - (total - share)))
      a.granted += granted
      if (granted < share) a.spent = true
      warned = false
    } catch (e) {
      if (!warned) o.logger.warn('rate limiter cannot reach redis; not limiting meanwhile', { error: (e as Error).message })
      warned = true
      a.granted += share
    }
  }

  /** Whether one more request of `who` fits in this second. */
  async function admit(who: string, limit: number): Promise<boolean> {
    for (;;) {
      const second = Math.floor(Date.now() / 1000)
      if (second !== sweptAt) {
        sweptAt = second
        for (const [k, v] of allowances) if (v.second < second) allowances.delete(k)
      }
      let a = allowances.get(who)
      if (!a || a.second !== second) {
        a = { second, granted: 0, used: 0, spent: false, claiming: null }
        allowances.set(who, a)
      }
      if (a.used < a.granted) {
        a.used++
        return true
      }
      if (a.spent) return false
      const mine = a
      a.claiming ??= claim(who, mine, limit).finally(() => (mine.claiming = null))
      await a.claiming
    }
  }

  return async function rateLimit(c, next) {
    const principal = c.get('principal')
    const limit = principal.rateLimitPerSec ?? o.perSecond
    if (limit <= 0) return next()
    const who = principal.ownerId !== null ? `token:${principal.ownerId}` : `ip:${clientAddress(c)}`
    if (!(await admit(who, limit))) {
      c.header('Retry-After', '1')
      return c.json(errorBody('rate_limited', `more than ${limit} requests per second; retry after 1 s`), 429)
    }
    await next()
  }
}
