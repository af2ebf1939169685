import type { Logger } from '../infra/logger'
import type { Redis } from '../infra/redis'
import type { StreamKeys } from '../infra/stream-keys'
import { AbortReason } from './run'
import type { TaskRunner } from './task-runner'

/**
 * Subscribes to every shard's cancels channel so a cancel or delete reaches a
 * running handler within milliseconds. Pub/sub is lossy (a notice sent while
 * this connection is down is gone), which is fine: it is only the fast path,
 * and the lease keeper finds every cancelled run at its next renewal anyway.
 * Reading the events stream instead cost a round trip per few events, for
 * the rare one that matters. On a cluster this is plain pub/sub too: a notice
 * reaches every node, and the subscription moves to another node when its own
 * fails. Sharded pub/sub (SSUBSCRIBE) would keep notices on their shard's
 * node, but while that node is down ioredis re-reads the slot map without
 * pause, and cancellations are too rare for the broadcast to matter.
 */
export function startCancelListener(o: { redis: Redis; keys: StreamKeys; runner: TaskRunner; logger: Logger }) {
  const channels = new Set(o.keys.shards.map((s) => s.cancels))
  const onMessage = (channel: string, message: string) => {
    if (!channels.has(channel)) return
    const taskId = Number(message)
    if (o.runner.running.has(taskId)) o.runner.abort(taskId, new AbortReason('cancelled'))
  }
  const warn = (e: Error) => o.logger.warn('cannot subscribe to cancellations yet', { error: e.message })
  // ioredis subscribes again by itself after a reconnect.
  o.redis.on('message', onMessage)
  o.redis.subscribe(...channels).catch(warn)
  return {
    async stop() {
      o.redis.disconnect()
    },
  }
}
