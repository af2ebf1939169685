import { describe, expect, test } from 'bun:test'
import { ConfigError } from '../src/config-error'
import { createRedis, waitForRedis } from '../src/infra/redis'
import { redisUrl } from './helpers/env'
import { recordingLogger } from './helpers/logger'
import { eventually } from './helpers/poll'

const withDatabase = (n: number) => {
  const url = new URL(redisUrl)
  url.pathname = `/${n}`
  return url.toString()
}

describe('a REDIS_URL Redis refuses', () => {
  test('is a ConfigError even when the refusal came before anyone waited (a refused SELECT still ends in ready, on database 0)', async () => {
    const { logger, lines } = recordingLogger()
    const redis = createRedis(withDatabase(99), 'producer', logger)
    try {
      // The refusal comes and goes while the role is busy elsewhere (the API builds its dashboard meanwhile).
      await eventually(async () => lines.length > 0, 10_000)
      const waited = await waitForRedis(redis, 3000).then(
        () => 'resolved',
        (e) => e,
      )
      expect(waited).toBeInstanceOf(ConfigError)
      expect((waited as Error).message).toContain('REDIS_URL')
      // Nobody was waiting when it came: it was logged as what it is, once, not as an outage.
      expect(lines.map(({ level, msg }) => ({ level, msg }))).toEqual([{ level: 'error', msg: 'redis refused REDIS_URL' }])
    } finally {
      redis.disconnect()
    }
  })

  test('rejects a waiter at once, and leaves nothing logged for it to repeat', async () => {
    const { logger, lines } = recordingLogger()
    const redis = createRedis(withDatabase(99), 'producer', logger)
    try {
      const waited = await waitForRedis(redis, 10_000).catch((e) => e)
      expect(waited).toBeInstanceOf(ConfigError)
      expect(lines).toEqual([])
      expect(redis.listenerCount('error')).toBe(1)
    } finally {
      redis.disconnect()
    }
  })
})
