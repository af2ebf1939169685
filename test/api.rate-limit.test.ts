import { afterAll, describe, expect, test } from 'bun:test'
import { Hono } from 'hono'
import type { AppEnv } from '../src/api/auth'
import { rateLimit } from '../src/api/rate-limit'
import { createLogger } from '../src/infra/logger'
import { deleteKeys, testRedis, uniquePrefix } from './helpers/redis'

const redis = testRedis()
const prefix = uniquePrefix()
afterAll(async () => {
  await deleteKeys(redis, prefix)
  redis.disconnect()
})

/** An API instance's limiter in front of a route, the principal given by headers (auth is not under test here). */
function instance(perSecond: number) {
  const app = new Hono<AppEnv>()
  app.use(async (c, next) => {
    const rate = c.req.header('x-rate')
    c.set('principal', { ownerId: Number(c.req.header('x-owner')), admin: false, name: 'o', rateLimitPerSec: rate === undefined ? null : Number(rate) })
    await next()
  })
  app.use(rateLimit({ redis, prefix, perSecond, logger: createLogger('silent') }))
  app.get('/', (c) => c.text('ok'))
  return app
}

/** Fires n requests at the instances in turn, all within one second's window (retried from the top of the next if a boundary fell inside). */
async function burst(apps: Hono<AppEnv>[], n: number, headers: Record<string, string>) {
  for (;;) {
    await Bun.sleep(1000 - (Date.now() % 1000))
    const second = Math.floor(Date.now() / 1000)
    const statuses = await Promise.all(
      Array.from({ length: n }, (_, i) => Promise.resolve(apps[i % apps.length]!.request('/', { headers })).then((r) => r.status)),
    )
    if (Math.floor(Date.now() / 1000) === second)
      return { ok: statuses.filter((s) => s === 200).length, limited: statuses.filter((s) => s === 429).length, second }
  }
}

describe('the rate limiter', () => {
  test('two instances together let through at most the limit per second, claiming it from Redis a share at a time', async () => {
    const apps = [instance(200), instance(200)]
    const { ok, limited, second } = await burst(apps, 600, { 'x-owner': '1' })
    expect(ok).toBeLessThanOrEqual(200)
    // Each instance may hold back at most one unused share (200 / 20).
    expect(ok).toBeGreaterThanOrEqual(200 - 2 * 10)
    expect(limited).toBe(600 - ok)
    const claimed = Number(await redis.get(`${prefix}rate:token:1:${second}`))
    // Shares of 10: a few dozen round trips for 600 requests, not 600.
    expect(claimed % 10).toBe(0)
    expect(claimed / 10).toBeLessThanOrEqual(30)
  })

  test('small limits are counted request by request, exactly', async () => {
    const { ok } = await burst([instance(7), instance(7)], 40, { 'x-owner': '2' })
    expect(ok).toBe(7)
  })

  test("a token's own limit overrides the setting, and 0 means none", async () => {
    const app = instance(1000)
    expect((await burst([app], 30, { 'x-owner': '3', 'x-rate': '5' })).ok).toBe(5)
    expect((await burst([instance(3)], 50, { 'x-owner': '4', 'x-rate': '0' })).ok).toBe(50)
  })
})
