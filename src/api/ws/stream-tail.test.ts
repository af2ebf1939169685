import { describe, expect, test } from 'bun:test'
import { createLogger } from '../../infra/logger'
import type { Redis } from '../../infra/redis'
import { streamKeys } from '../../infra/stream-keys'
import type { Following } from './following'
import { StreamTail } from './stream-tail'

describe('StreamTail', () => {
  test('close returns even when a read outlives its connection (a cluster client can)', async () => {
    // The end of each stream is known at once; the reads that follow never settle, however the connection is closed.
    const deaf = { on() {}, xrevrange: async () => [], xreadBuffer: () => new Promise(() => {}), disconnect() {} } as unknown as Redis
    const following = { learnStart: async () => 0, offer() {}, catchUpAfterOutage: async () => {} } as unknown as Following
    const tail = new StreamTail({
      redis: () => deaf,
      keys: streamKeys('tail-test:', 2),
      logger: createLogger('silent'),
      lingerMs: 60_000,
      hasListeners: () => true,
      follow: () => following,
    })
    await tail.start()
    await tail.following()
    const closed = tail.close().then(() => 'closed')
    expect(await Promise.race([closed, Bun.sleep(2000).then(() => 'still closing')])).toBe('closed')
  })
})
