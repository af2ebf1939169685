import { afterAll, beforeAll, expect, test } from 'bun:test'
import { createLogger } from '../src/infra/logger'
import { createRedis, waitForRedis, type Redis } from '../src/infra/redis'
import { startRedisServer, type OwnRedisServer } from './helpers/throwaway'

/**
 * A Redis that holds a command without ever answering (here: its process
 * stopped, its connections open) must not hold a producer's caller for ever:
 * pushes leave one at a time, so one unanswered push would hold every later
 * one, and a shutdown waiting for them.
 */
let server: OwnRedisServer
let producer: Redis
beforeAll(async () => {
  server = await startRedisServer()
  producer = createRedis(server.url, 'producer', createLogger('silent'), { commandTimeoutMs: 300 })
  expect(await waitForRedis(producer, 5000)).toBe(true)
})
afterAll(async () => {
  server.thaw()
  producer.disconnect()
  await server.destroy()
})

test('a producer command that gets no reply fails after the command timeout, and the connection serves again once Redis answers', async () => {
  server.freeze()
  try {
    // Bounded here too, so that without the timeout the test fails instead of hanging.
    const answer = producer.xadd('s', '*', 'f', '1').then(
      () => 'answered',
      (e: Error) => e.message,
    )
    expect(await Promise.race([answer, Bun.sleep(10_000).then(() => 'still waiting')])).toBe('Command timed out')
  } finally {
    server.thaw()
  }
  expect(await producer.xadd('s', '*', 'f', '2')).toMatch(/^\d+-\d+$/)
})
