import type { Logger } from '../infra/logger'
import { blockingRead, streamEndId, type Redis } from '../infra/redis'
import type { StreamKeys } from '../infra/stream-keys'
import { fieldsToRecord, type TaskEventMessage } from '../domain/messages'
import { AbortReason, type TaskRunner } from './task-runner'

/**
 * Tails the events stream so a cancel reaches a running handler within
 * milliseconds (the lease keeper would notice too, but only at its next tick).
 */
export function startCancelListener(o: { redis: Redis; keys: StreamKeys; runner: TaskRunner; logger: Logger }) {
  let running = true
  const loop = (async () => {
    // Not '$' on every call: an event written between two reads would be missed.
    let cursor: string | null = null
    while (running) {
      try {
        cursor ??= await streamEndId(o.redis, o.keys.events)
        const res = (await blockingRead(o.redis, o.redis.xread('COUNT', 1000, 'BLOCK', 1000, 'STREAMS', o.keys.events, cursor), 10_000)) as
          | [string, [string, string[]][]][]
          | null
        for (const [id, fields] of res?.[0]?.[1] ?? []) {
          cursor = id
          const f = fieldsToRecord(fields)
          if (!f.t || !f.d || !o.runner.running.has(Number(f.t))) continue
          const event = JSON.parse(f.d) as TaskEventMessage
          if (event.status === 'CANCELLED' || event.deleted) o.runner.abort(event.task_id, new AbortReason('cancelled'))
        }
      } catch {
        if (running) await Bun.sleep(250)
      }
    }
  })()
  return {
    async stop() {
      running = false
      o.redis.disconnect()
      await loop
    },
  }
}
