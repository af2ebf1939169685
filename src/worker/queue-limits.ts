import type { Config } from '../config'
import type { QueueLimit } from '../domain/tasks/task-claim.repository'

/** QUEUE_CONCURRENCY and QUEUE_RATE, one limit per queue named in either. */
export function queueLimits(config: Pick<Config, 'QUEUE_CONCURRENCY' | 'QUEUE_RATE'>): QueueLimit[] {
  const names = new Set([...Object.keys(config.QUEUE_CONCURRENCY), ...Object.keys(config.QUEUE_RATE)])
  return [...names].map((queue) => ({ queue, concurrency: config.QUEUE_CONCURRENCY[queue], perSecond: config.QUEUE_RATE[queue] }))
}
