import { Redis } from 'ioredis'
import { redisUrl, uniqueName } from './env'

export { deleteKeys } from '../../src/infra/redis'

export const testRedis = (url = redisUrl) => new Redis(url, { maxRetriesPerRequest: 1 })

export const uniquePrefix = () => `${uniqueName('test')}:`

/**
 * A real Redis whose every stream push is held back `delayMs` before it is
 * sent, as a slow or distant Redis would: when each push started and ended is
 * recorded, so a test can see what its caller did meanwhile.
 */
export function slowPushRedis(delayMs: number) {
  const redis = testRedis()
  /** Pushes that reached Redis; `started` counts the ones sent, finished or not. */
  const pushes: { started: number; ended: number }[] = []
  let started = 0
  const define = redis.defineCommand.bind(redis)
  redis.defineCommand = (name: string, definition: { lua: string; numberOfKeys?: number }) => {
    define(name, definition)
    const target = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
    const real = target[name]!.bind(redis)
    target[name] = async (...args: unknown[]) => {
      const at = Date.now()
      started++
      await Bun.sleep(delayMs)
      const result = await real(...args)
      pushes.push({ started: at, ended: Date.now() })
      return result
    }
  }
  return { redis, pushes, started: () => started }
}
