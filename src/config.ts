import { z } from 'zod'
import { parseDuration } from './infra/duration'
import { queueNameSchema } from './domain/tasks/task'
import { parseRedisUrl } from './infra/redis'
import { ConfigError } from './config-error'

const port = z.coerce.number().int().min(0).max(65535)
const positiveInt = z.coerce.number().int().positive()
const commaList = z
  .string()
  .default('')
  .transform((s) =>
    s
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean),
  )
/** An origin as URL.origin spells it (lower-case host, no default port), which is how requests' origins are compared. */
const origin = z
  .url('each entry must be an origin like https://app.example.com')
  // A path, query or user name would never match a request's origin: refused, not silently ignored.
  .refine((u) => {
    const url = new URL(u)
    return url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password
  }, 'each entry must be an origin (scheme://host[:port]) with no path, query or user name')
  .transform((u) => new URL(u).origin)
const origins = commaList.pipe(z.array(origin))

/** `name:value,name:value`, each value parsed by `value`; a name given twice is refused. */
const perQueue = <T>(what: string, value: (v: string) => T | undefined) =>
  commaList.transform((entries, ctx) => {
    const out: Record<string, T> = {}
    for (const entry of entries) {
      const at = entry.lastIndexOf(':')
      const name = entry.slice(0, at).trim()
      const parsed = at > 0 && queueNameSchema.safeParse(name).success ? value(entry.slice(at + 1).trim()) : undefined
      if (parsed === undefined || Object.hasOwn(out, name)) {
        ctx.addIssue({ code: 'custom', message: `"${entry}" is not queue:${what} (a queue named once, like emails:${what === 'limit' ? '4' : '10/s'})` })
        return z.NEVER
      }
      out[name] = parsed
    }
    // Written back as text (a config handed to a child's environment), it reads as it was given.
    Object.defineProperty(out, 'toString', { value: () => entries.join(','), enumerable: false })
    return out
  })
const positiveCount = (v: string) => (/^[1-9][0-9]*$/.test(v) ? Number(v) : undefined)
/** `10/s`, `600/m` or `3600/h`: starts per second. */
const ratePerSecond = (v: string) => {
  const m = /^([0-9]+(?:\.[0-9]+)?)\/(s|m|h)$/.exec(v)
  const n = m ? Number(m[1]) / { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'] : 0
  return n > 0 ? n : undefined
}

const duration = z.string().transform((s, ctx) => {
  const ms = parseDuration(s)
  if (ms === undefined) ctx.addIssue({ code: 'custom', message: 'must be a duration like 7d, 12h or 30m (a bare number is ms), or 0 / off' })
  return ms ?? 0
})

/** Every setting the two roles read from the environment, with its default. */
export const configSchema = z.object({
  PORT: port.default(8000),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .default('postgres://postgres:postgres@localhost:5432/postgres'),
  /** One server (redis://, rediss://) or a Redis Cluster by some of its nodes (redis+cluster://host:7000,host:7001). */
  REDIS_URL: z
    .string()
    .refine((u) => parseRedisUrl(u) !== null, 'must be a redis:// URL, or redis+cluster://host:port,host:port for a Redis Cluster')
    .default('redis://localhost:6379'),
  /**
   * How many jobs and events streams the queue is split over, each on its own
   * hash tag so a Redis Cluster spreads them over its masters. Every API and
   * worker instance must use the same value.
   */
  JOB_SHARDS: positiveInt.max(64).default(1),
  KEY_PREFIX: z
    .string()
    .regex(/^[\w:.-]*$/, 'may hold only letters, digits and _ : . -')
    .default('taskline:'),
  // Handlers are async and mostly wait (on sleep, I/O, other services), so a
  // slot costs a promise, not a thread: 64 keep a worker busy while tasks wait,
  // and outcomes are written in batches over DB_POOL_SIZE connections, so the
  // slots do not each hold one. CPU-bound handlers want fewer, and more workers.
  WORKER_CONCURRENCY: positiveInt.max(1000).default(64),
  DEMO_WORK_MS: z.coerce.number().int().min(0).default(1000),
  DB_POOL_SIZE: positiveInt.max(100).default(10),
  VISIBILITY_TIMEOUT_MS: positiveInt.default(30_000),
  SWEEP_INTERVAL_MS: positiveInt.default(1000),
  /** How long a worker with free slots waits for a job before looking for ready tasks in Postgres anyway. */
  WORKER_POLL_MS: positiveInt.default(1000),
  /** Comma-separated queues this worker serves; empty: every queue. */
  QUEUES: commaList.pipe(z.array(queueNameSchema)),
  /** `emails:4,reports:1`: at most this many tasks of the queue run at once, across all workers. */
  QUEUE_CONCURRENCY: perQueue('limit', positiveCount),
  /** `emails:10/s,reports:30/m`: at most this many tasks of the queue start per second (or minute, hour), across all workers. */
  QUEUE_RATE: perQueue('rate', ratePerSecond),
  SCHEDULER_INTERVAL_MS: positiveInt.default(500),
  RETRY_BASE_MS: z.coerce.number().int().min(0).default(1000),
  // A handler that never returns would hold its slot and lease forever.
  TASK_TIMEOUT_MS: positiveInt.default(3_600_000),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  EVENTS_MAXLEN: positiveInt.default(100_000),
  WS_MAX_BUFFERED_BYTES: positiveInt.default(1024 * 1024),
  EVENTS_RESYNC_MS: positiveInt.default(2000),
  // Secure by default; `bun run dev` turns it off for a first local run.
  AUTH: z.enum(['required', 'off']).default('required'),
  /** Comma-separated origins allowed for CORS and WebSocket upgrades; empty allows same-origin only. */
  CORS_ORIGINS: origins,
  /** Comma-separated handler modules (.ts or .js, relative to the working directory) a worker loads beside the built-in types. */
  HANDLERS: commaList,
  /** Exact origins the built-in http type may call; empty disables the type. */
  HTTP_TASK_ALLOWED_ORIGINS: origins,
  /** When set, every http task request carries X-Taskline-Signature (HMAC-SHA256 with this secret). */
  HTTP_TASK_SIGNING_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  MAX_BODY_BYTES: positiveInt.default(1024 * 1024),
  MAX_PAYLOAD_BYTES: positiveInt.default(64 * 1024),
  MAX_PAYLOAD_DEPTH: positiveInt.max(1000).default(16),
  /**
   * Requests per second per token (per address when AUTH=off); 0 turns
   * limiting off, and a token may have its own (`token create --rate`). High
   * enough for an integration that posts as fast as it can, low enough that
   * one runaway client cannot take a whole API instance.
   */
  RATE_LIMIT_PER_SEC: z.coerce.number().int().min(0).default(1000),
  WS_MAX_CONNECTIONS: positiveInt.default(20_000),
  WS_MAX_CONNECTIONS_PER_TOKEN: positiveInt.default(1000),
  WS_MAX_MESSAGE_BYTES: positiveInt.default(4096),
  WS_IDLE_TIMEOUT_S: z.coerce.number().int().min(0).max(960).default(120),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  /** json: one object per line; pretty: for people; auto: pretty in a terminal, json otherwise. */
  LOG_FORMAT: z.enum(['json', 'pretty', 'auto']).default('auto'),
  /**
   * Where clients reach the API (https://tasks.example.com, a path prefix
   * allowed): `next` links are built on it. Unset, they are relative, since
   * the request's Host header is the client's to choose.
   */
  PUBLIC_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL like https://tasks.example.com' })
    .refine((u) => !/[?#]/.test(u), 'must not have a query or fragment')
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  /** How long finished tasks of each status are kept, in ms (written like 7d or 12h; 0 or off keeps them for ever). */
  RETENTION_COMPLETED: duration.prefault('7d'),
  RETENTION_FAILED: duration.prefault('30d'),
  RETENTION_CANCELLED: duration.prefault('7d'),
  /** How often a worker looks for finished tasks past their retention (one worker at a time). */
  RETENTION_INTERVAL_MS: positiveInt.default(60_000),
  /**
   * How often a worker vacuums tasks (one worker at a time; 0 leaves it to
   * autovacuum, whose defaults come far too late for a queue's claims). A
   * vacuum is followed by nine times its length without one, however large the
   * table.
   */
  TASKS_VACUUM_INTERVAL_MS: z.coerce.number().int().min(0).default(1000),
  /** The worker's own /metrics; 0 picks a free port. */
  WORKER_METRICS_PORT: port.default(9464),
})

export type Config = Readonly<z.infer<typeof configSchema>>

export { ConfigError }

/**
 * Parses the environment (against the whole schema, or the part a command
 * needs); the error names the first bad variable in one line.
 */
export function loadConfig(env?: Record<string, string | undefined>): Config
export function loadConfig<S extends z.ZodObject>(env: Record<string, string | undefined> | undefined, schema: S): Readonly<z.infer<S>>
export function loadConfig(env: Record<string, string | undefined> = process.env, schema: z.ZodObject = configSchema) {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
  const parsed = schema.safeParse(cleaned)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new ConfigError(`invalid configuration: ${String(issue.path[0])}: ${issue.message}`)
  }
  return Object.freeze(parsed.data)
}
