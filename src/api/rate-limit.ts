import type { MiddlewareHandler } from 'hono'
import type { Logger } from '../infra/logger'
import type { Redis } from '../infra/redis'
import type { AppEnv } from './auth'
import { clientAddress } from './client-address'
import { errorBody } from './error-handler'

/**
 * Fixed one-second windows counted in Redis, so the limit holds across every
 * API instance: per token, or per client address when AUTH=off. If Redis is
 * away the request is let through: availability beats precision here.
 */
export function rateLimit(o: { redis: Redis; prefix: string; perSecond: number; logger: Logger }): MiddlewareHandler<AppEnv> {
  let warned = false
  return async function rateLimit(c, next) {
    if (o.perSecond <= 0) return next()
    const principal = c.get('principal')
    const who = principal.ownerId !== null ? `token:${principal.ownerId}` : `ip:${clientAddress(c)}`
    const second = Math.floor(Date.now() / 1000)
    let count = 0
    try {
      const key = `${o.prefix}rate:${who}:${second}`
      const res = await o.redis.pipeline().incr(key).pexpire(key, 2000).exec()
      count = Number(res?.[0]?.[1] ?? 0)
      warned = false
    } catch (e) {
      if (!warned) o.logger.warn('rate limiter cannot reach redis; not limiting meanwhile', { error: (e as Error).message })
      warned = true
    }
    if (count > o.perSecond) {
      c.header('Retry-After', '1')
      return c.json(errorBody('rate_limited', `more than ${o.perSecond} requests per second; retry after 1 s`), 429)
    }
    await next()
  }
}
