import type { Logger } from '../infra/logger'
import type { Redis } from '../infra/redis'
import type { StreamKeys } from '../infra/stream-keys'
import { AbortReason } from './run'
import type { TaskRunner } from './task-runner'

/**
 * Subscribes to the cancels channel so a cancel or delete reaches a running
 * handler within milliseconds. Pub/sub is lossy (a notice sent while this
 * connection is down is gone), which is fine: it is only the fast path, and
 * the lease keeper finds every cancelled run at its next renewal anyway.
 * Reading the events stream instead cost a round trip per few events, for
 * the rare one that matters.
 */
export function startCancelListener(o: { redis: Redis; keys: StreamKeys; runner: TaskRunner; logger: Logger }) {
  o.redis.on('message', (channel: string, message: string) => {
    if (channel !== o.keys.cancels) return
    const taskId = Number(message)
    if (o.runner.running.has(taskId)) o.runner.abort(taskId, new AbortReason('cancelled'))
  })
  // ioredis subscribes again by itself after a reconnect.
  o.redis.subscribe(o.keys.cancels).catch((e: Error) => o.logger.warn('cannot subscribe to cancellations yet', { error: e.message }))
  return {
    async stop() {
      o.redis.disconnect()
    },
  }
}
