import { Redis } from 'ioredis'
import { redisUrl, uniqueName } from './env'

export { deleteKeys } from '../../src/infra/redis'

export const testRedis = (url = redisUrl) => new Redis(url, { maxRetriesPerRequest: 1 })

export const uniquePrefix = () => `${uniqueName('test')}:`

/**
 * A real Redis that records when each stream push started and ended, so a
 * test can see what its caller did meanwhile; with `until`, every push is
 * held back until it settles, as a slow or distant Redis would hold it.
 */
export function pushRecordingRedis(until?: Promise<unknown>) {
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
      await until
      const result = await real(...args)
      pushes.push({ started: at, ended: Date.now() })
      return result
    }
  }
  return { redis, pushes, started: () => started }
}

/**
 * Pushes held until the test calls release(): what it checks meanwhile is
 * never a race against a delay, however slow a shared machine is.
 */
export function heldPushRedis() {
  const gate = Promise.withResolvers<void>()
  return { ...pushRecordingRedis(gate.promise), release: () => gate.resolve() }
}
