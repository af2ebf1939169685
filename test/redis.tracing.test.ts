import { describe, expect, test } from 'bun:test'
import diagnostics from 'node:diagnostics_channel'
import '../src/infra/redis'
import { testRedis } from './helpers/redis'

describe("ioredis' tracing channels under Bun", () => {
  test('report no subscribers when none listen, so ioredis does not trace every command', () => {
    expect(diagnostics.tracingChannel('ioredis:command').hasSubscribers).toBe(false)
  })

  test('still trace commands for whoever subscribes (an OpenTelemetry hook, say)', async () => {
    const channel = diagnostics.tracingChannel('ioredis:command')
    const seen: string[] = []
    const handlers = { start: (m: unknown) => void seen.push((m as { command: string }).command), end() {}, asyncStart() {}, asyncEnd() {}, error() {} }
    channel.subscribe(handlers)
    const redis = testRedis()
    try {
      expect(channel.hasSubscribers).toBe(true)
      await redis.ping()
      expect(seen).toContain('ping')
    } finally {
      channel.unsubscribe(handlers)
      redis.disconnect()
    }
    expect(channel.hasSubscribers).toBe(false)
  })
})
