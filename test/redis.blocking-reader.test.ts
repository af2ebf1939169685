import { expect, test } from 'bun:test'
import { createBlockingReader } from '../src/infra/redis'
import { testRedis, uniquePrefix } from './helpers/redis'

test('a blocking read that never settles is given up and its connection re-made; reads that settle pass through', async () => {
  const redis = testRedis()
  const reader = createBlockingReader(redis, 150)
  try {
    const key = `${uniquePrefix()}stream`
    expect(await reader.read(redis.xread('BLOCK', 50, 'STREAMS', key, '0-0'))).toBeNull()
    const started = performance.now()
    await expect(reader.read(new Promise(() => {}))).rejects.toThrow('did not settle within 150 ms')
    expect(performance.now() - started).toBeLessThan(2000)
    // the connection was dropped and comes back by itself
    expect(await redis.ping()).toBe('PONG')
  } finally {
    reader.stop()
    redis.disconnect()
  }
})

test('stop rejects the read still out, though its connection never answers', async () => {
  const redis = testRedis()
  const reader = createBlockingReader(redis, 60_000)
  try {
    const reading = reader.read(new Promise(() => {}))
    reader.stop()
    await expect(reading).rejects.toThrow('blocking reader stopped')
  } finally {
    redis.disconnect()
  }
})
