import diagnostics from 'node:diagnostics_channel'
import { Cluster, Redis as Standalone } from 'ioredis'
import type { Logger } from './logger'
import { ConfigError } from '../config-error'

/** One Redis server or a Redis Cluster: Taskline issues the same commands to either. */
export type Redis = Standalone | Cluster

/**
 * Bun 1.4's TracingChannel has no `hasSubscribers`. ioredis takes undefined for
 * "someone is listening" and traces every command: it copies and redacts the
 * arguments (a regex per command) and wraps the promise, a large part of its
 * CPU per pipelined command (docs/performance.md). Node's definition: any of
 * the five channels has a subscriber. Defined only where missing, so a Bun that
 * has it keeps its own.
 */
export function defineTracingHasSubscribers(dc: typeof diagnostics = diagnostics): void {
  const proto = Object.getPrototypeOf(dc.tracingChannel('taskline:probe')) as object
  if ('hasSubscribers' in proto) return
  Object.defineProperty(proto, 'hasSubscribers', {
    configurable: true,
    get(this: Record<'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error', { hasSubscribers: boolean }>) {
      return this.start.hasSubscribers || this.end.hasSubscribers || this.asyncStart.hasSubscribers || this.asyncEnd.hasSubscribers || this.error.hasSubscribers
    },
  })
}
defineTracingHasSubscribers()

/** How long a producer command may wait for its reply (createRedis). */
export const PRODUCER_COMMAND_TIMEOUT_MS = 5000

/** What Redis answers a connection whose REDIS_URL cannot work however often it retries: a bad database number or credentials. */
const refusedSetting = /DB index is out of range|WRONGPASS|NOAUTH|invalid password/i

/**
 * A connection's refusal of REDIS_URL before it was ever ready, kept for
 * waitForRedis (which may be called after it came: a refused SELECT still
 * ends in 'ready', on database 0), and whether one is waiting to report it.
 */
const refusals = new WeakMap<Redis, { refused?: Error; waiting: boolean }>()
const refusalOf = (redis: Redis) => refusals.get(redis) ?? refusals.set(redis, { waiting: false }).get(redis)!
const refusedError = (e: Error) => new ConfigError(`invalid configuration: REDIS_URL: redis refused it: ${e.message}`)

/**
 * 'producer' connections fail fast while Redis is away (the caller decides what
 * to do: a POST still succeeds, the sweeper enqueues later), and a command
 * whose reply never comes fails after commandTimeoutMs: one sent to a cluster
 * node just before it died can otherwise wait for ever, and every push queued
 * behind it (and a shutdown waiting for them) with it. 'blocking' connections
 * carry one XREAD/XREADGROUP at a time and wait out an outage (their reads
 * have a watchdog instead: createBlockingReader). Both reconnect with capped
 * backoff and log one line per outage, not per retry.
 */
export function createRedis(
  url: string,
  role: 'producer' | 'blocking',
  logger: Logger,
  { commandTimeoutMs = PRODUCER_COMMAND_TIMEOUT_MS }: { commandTimeoutMs?: number } = {},
): Redis {
  const retry = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000)
  const options = {
    enableOfflineQueue: role === 'blocking',
    maxRetriesPerRequest: role === 'blocking' ? null : 1,
    connectionName: `taskline-${role}`,
    ...(role === 'producer' ? { commandTimeout: commandTimeoutMs } : {}),
  }
  const target = parseRedisUrl(url)
  const redis: Redis =
    target?.kind !== 'cluster'
      ? new Standalone(url, { ...options, lazyConnect: false, retryStrategy: retry })
      : new Cluster(target.nodes, {
          enableOfflineQueue: options.enableOfflineQueue,
          clusterRetryStrategy: retry,
          // A push to a master that is down fails after this many tries (100 ms apart) instead of
          // 16: it is dropped anyway (Postgres has it), and pushes to the other shards wait for it.
          maxRedirections: role === 'producer' ? 3 : 16,
          redisOptions: { ...options, ...target.auth },
        })
  let down = false
  let everReady = false
  redis.on('error', (e: Error) => {
    if (!everReady && refusedSetting.test(e.message)) {
      const refusal = refusalOf(redis)
      refusal.refused ??= e
      // A waitForRedis reports it as the bad setting it is, in one line; with none waiting, it is logged as one, once,
      // by the producer connection every role waits for (its blocking ones share the URL, and would only repeat it).
      if (role === 'producer' && !refusal.waiting && refusal.refused === e)
        logger.error('redis refused REDIS_URL', { connection: role, error: refusedError(e).message })
      return
    }
    if (down) return
    down = true
    logger.warn('redis unavailable, reconnecting', { connection: role, error: e.message })
  })
  redis.on('ready', () => {
    everReady = true
    if (!down) return
    down = false
    logger.info('redis reconnected', { connection: role })
  })
  return redis
}

type RedisTarget =
  | { kind: 'standalone' }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; auth: { username?: string; password?: string; tls?: object } }

/**
 * redis://, rediss:// name one server; redis+cluster://[user:pass@]host:port,host:port
 * (rediss+cluster:// for TLS) names a Redis Cluster by some of its nodes,
 * from which the client learns the rest.
 */
export function parseRedisUrl(url: string): RedisTarget | null {
  if (/^rediss?:\/\//.test(url)) return { kind: 'standalone' }
  const m = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#@]+)\/?$/.exec(url)
  if (!m) return null
  const [, scheme, userinfo, hosts] = m
  const nodes = hosts!.split(',').map((h) => {
    const at = h.lastIndexOf(':')
    return at > 0 ? { host: h.slice(0, at), port: Number(h.slice(at + 1)) } : { host: h, port: 6379 }
  })
  if (nodes.some((n) => !n.host || !Number.isInteger(n.port) || n.port < 1 || n.port > 65535)) return null
  const [username, password] = userinfo === undefined ? [] : userinfo.includes(':') ? userinfo.split(/:(.*)/s) : [undefined, userinfo]
  return {
    kind: 'cluster',
    nodes,
    auth: {
      ...(username ? { username: decodeURIComponent(username) } : {}),
      ...(password ? { password: decodeURIComponent(password) } : {}),
      ...(scheme === 'rediss' ? { tls: {} } : {}),
    },
  }
}

/** Each server holding keys: the one server, or every master of a cluster. */
export const masters = (redis: Redis): Standalone[] => (redis instanceof Cluster ? redis.nodes('master') : [redis])

/**
 * Deletes every key under prefix, with SCAN rather than KEYS so a shared Redis
 * is never blocked: how tests and the bench leave Redis as they found it.
 */
export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  for (const node of masters(redis)) {
    let cursor = '0'
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      // One DEL per key: on a cluster a DEL of keys in different slots is refused.
      if (keys.length) await Promise.all(keys.map((k) => node.del(k)))
    } while (cursor !== '0')
  }
}

/** The id of a stream's newest entry ('0-0' if empty): where a tail-follower starts without missing anything. */
export async function streamEndId(redis: Redis, key: string): Promise<string> {
  const last = (await redis.xrevrange(key, '+', '-', 'COUNT', 1)) as [string, string[]][]
  return last[0]?.[0] ?? '0-0'
}

/**
 * Closes politely (QUIT lets replies in flight arrive), but within ms: a
 * cluster client whose node is away can wait on QUIT for ever, and a role
 * shutting down must not.
 */
export async function closeRedis(redis: Redis, ms = 2000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    await Promise.race([redis.quit(), new Promise((resolve) => (timer = setTimeout(resolve, ms)))])
  } finally {
    clearTimeout(timer)
    redis.disconnect()
  }
}

/**
 * Waits up to ms for the first connection; a role still starts if Redis is
 * away (it catches up later), but not if Redis refuses what REDIS_URL asks:
 * that is a ConfigError, never a reconnect loop. A role starts the wait as
 * soon as it has the connection and awaits it when it needs Redis: a refusal
 * meanwhile is then reported once, by the wait, and its rejection is never
 * "unhandled" while the role builds the rest.
 */
export function waitForRedis(redis: Redis, ms: number): Promise<boolean> {
  const waited = firstConnection(redis, ms)
  waited.catch(() => {})
  return waited
}

function firstConnection(redis: Redis, ms: number): Promise<boolean> {
  const refusal = refusalOf(redis)
  if (refusal.refused) return Promise.reject(refusedError(refusal.refused))
  if (redis.status === 'ready') return Promise.resolve(true)
  refusal.waiting = true
  return new Promise((resolve, reject) => {
    const done = () => {
      refusal.waiting = false
      clearTimeout(timer)
      redis.off('ready', ready)
      redis.off('error', failed)
    }
    const ready = () => {
      done()
      resolve(true)
    }
    const failed = (e: Error) => {
      if (!refusedSetting.test(e.message)) return
      done()
      // The URL itself is never repeated: it may hold a password.
      reject(refusedError(e))
    }
    const timer = setTimeout(() => {
      done()
      resolve(false)
    }, ms)
    redis.on('ready', ready)
    redis.on('error', failed)
  })
}

/**
 * How long a blocking read of up to blockMs may be out before its watchdog
 * deems the connection stuck: past the BLOCK by a margin for a busy server
 * and a slow network, and never under floorMs (tests lower it).
 */
export const watchdogMs = (blockMs: number, floorMs = 10_000) => Math.max(floorMs, blockMs + 5000)

/**
 * Bounds the blocking reads of one connection: after a reconnect ioredis can
 * leave one that never settles (BullMQ added a watchdog for the same reason).
 * A read outstanding past ms drops and re-makes the connection and rejects,
 * so its loop retries. stop() rejects the read still out: a cluster client's
 * read can outlive its disconnect, and a role shutting down must not wait on
 * it. One interval per connection, not a timer per read: under load a read
 * returns every millisecond or so.
 */
export function createBlockingReader(redis: Redis, ms: number) {
  let current: { since: number; reject: (e: Error) => void } | null = null
  const timer = setInterval(
    () => {
      if (!current || performance.now() - current.since < ms) return
      const { reject } = current
      current = null
      redis.disconnect(true)
      reject(new Error(`blocking read did not settle within ${ms} ms; reconnected`))
    },
    Math.max(10, Math.min(1000, ms / 4)),
  )
  timer.unref()
  return {
    read<T>(read: Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const mine = { since: performance.now(), reject }
        current = mine
        const settle = () => {
          if (current === mine) current = null
        }
        read.then(
          (v) => {
            settle()
            resolve(v)
          },
          (e) => {
            settle()
            reject(e)
          },
        )
      })
    },
    stop() {
      clearInterval(timer)
      current?.reject(new Error('blocking reader stopped'))
      current = null
    },
  }
}
