import type { Server } from 'bun'
import type { Logger } from '../../infra/logger'
import type { Redis } from '../../infra/redis'
import type { StreamKeys } from '../../infra/stream-keys'
import { fieldsToRecord } from '../../domain/messages'

export const allTasksTopic = 'tasks'
export const taskTopic = (id: number | string) => `task:${id}`

type Listener = (json: string) => void

/**
 * Tails the events stream from this instance's own position (plain XREAD, so
 * every API instance sees every event) and publishes each event's JSON, as
 * written by its producer, to the task's topic and the all-tasks topic.
 * Sockets still catching up on history listen per topic until they subscribe.
 */
export function createEventHub(deps: { redis: Redis; keys: StreamKeys; logger: Logger }) {
  const listeners = new Map<string, Set<Listener>>()
  let running = false
  let loop: Promise<void> | null = null

  function deliver(server: Server<unknown>, taskId: string, json: string) {
    server.publish(taskTopic(taskId), json)
    server.publish(allTasksTopic, json)
    for (const topic of [taskTopic(taskId), allTasksTopic]) {
      const set = listeners.get(topic)
      if (set) for (const l of set) l(json)
    }
  }

  async function lastId(): Promise<string> {
    const last = (await deps.redis.xrevrange(deps.keys.events, '+', '-', 'COUNT', 1)) as [string, string[]][]
    return last[0]?.[0] ?? '0-0'
  }

  async function run(server: Server<unknown>, onReady: () => void) {
    let cursor = await lastId()
    onReady()
    while (running) {
      try {
        const res = (await deps.redis.xread('COUNT', 1000, 'BLOCK', 1000, 'STREAMS', deps.keys.events, cursor)) as
          | [string, [string, string[]][]][]
          | null
        for (const [, entries] of res ?? []) {
          for (const [id, fields] of entries) {
            cursor = id
            const f = fieldsToRecord(fields)
            if (f.t && f.d) deliver(server, f.t, f.d)
          }
        }
      } catch (e) {
        if (!running) break
        deps.logger.debug('event hub read failed, retrying', { error: (e as Error).message })
        await Bun.sleep(250)
      }
    }
  }

  return {
    /** Resolves once the hub knows where the stream ends, so no later event is missed. */
    start(server: Server<unknown>): Promise<void> {
      running = true
      return new Promise((resolve) => {
        loop = run(server, resolve).catch((e) => {
          if (running) deps.logger.error('event hub stopped', { error: e })
        })
      })
    },
    /** Calls fn with every event JSON for topic until the returned function is called. */
    listen(topic: string, fn: Listener): () => void {
      let set = listeners.get(topic)
      if (!set) listeners.set(topic, (set = new Set()))
      set.add(fn)
      return () => {
        set.delete(fn)
        if (set.size === 0) listeners.delete(topic)
      }
    },
    async close() {
      if (!running) return
      running = false
      deps.redis.disconnect()
      await loop?.catch(() => {})
    },
  }
}

export type EventHub = ReturnType<typeof createEventHub>
