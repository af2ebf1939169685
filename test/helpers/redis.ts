import { Redis } from 'ioredis'
import { redisUrl, uniqueName } from './env'

export const testRedis = (url = redisUrl) => new Redis(url, { maxRetriesPerRequest: 1 })

export const uniquePrefix = () => `${uniqueName('test')}:`

/** Deletes every key under prefix, so tests leave the shared Redis as they found it. */
export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
    cursor = next
    if (keys.length) await redis.del(...keys)
  } while (cursor !== '0')
}
