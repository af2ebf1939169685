import keySlot from 'cluster-key-slot'

/** Redis Cluster's slot count: a key's slot is CRC16 of its hash tag modulo this. */
const SLOTS = 16384

/** One shard's keys: they share a hash tag, so a script may touch all three on a Redis Cluster. */
export interface Shard {
  index: number
  /** Wake-ups: one entry per task made ready, read by the workers' group, which then claim from Postgres. */
  jobs: string
  /** Status events: read by every API instance (fan-out). */
  events: string
  /** Pub/sub channel of cancelled or deleted task ids: how a running handler hears of it at once. */
  cancels: string
}

/**
 * The hash tag of shard `index` of `count`: the first of s{index}, s{index}-1,
 * s{index}-2... whose slot falls in the shard's share of the slot range. A
 * cluster created with slots split evenly (what `redis-cli --cluster create`
 * does) then holds each of `count` shards on its own master when it has
 * `count` of them; stable for a given count, so every instance agrees.
 */
export function shardTag(index: number, count: number): string {
  const from = Math.floor((index * SLOTS) / count)
  const to = Math.floor(((index + 1) * SLOTS) / count)
  for (let k = 0; ; k++) {
    const tag = k === 0 ? `s${index}` : `s${index}-${k}`
    const slot = keySlot(`{${tag}}`)
    if (slot >= from && slot < to) return tag
  }
}

/**
 * Every Redis key Taskline touches, in one place, under one prefix. The jobs
 * and events streams are split into `shards` (JOB_SHARDS); a task's shard is
 * its id modulo that, so its events stay in order on one stream.
 */
export function streamKeys(prefix: string, shards = 1) {
  const list: Shard[] = Array.from({ length: shards }, (_, index) => {
    const tag = `${prefix}{${shardTag(index, shards)}}:`
    return { index, jobs: `${tag}jobs`, events: `${tag}events`, cancels: `${tag}cancels` }
  })
  return {
    prefix,
    shards: list,
    shardOf: (taskId: number): Shard => list[taskId % shards]!,
    workersGroup: 'workers',
  } as const
}

export type StreamKeys = ReturnType<typeof streamKeys>
