import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Redis } from './redis'
import type { StreamKeys } from './stream-keys'

const secondsBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

/** Figures of the whole cluster, read from Postgres when scraped (the API serves them). */
export interface ClusterFigures {
  /** Tasks by status and queue. */
  tasks(): Promise<{ status: string; queue: string; n: number }[]>
  workersAlive(): Promise<number>
}

type MetricsOptions = { role: 'api' | 'worker'; redis: Redis; keys: StreamKeys; openSockets?: () => number; cluster?: ClusterFigures }
type Registers = Registry[]

/**
 * One Prometheus registry per role instance (prom-client): task counters by
 * type, run, queue-wait and event-delivery histograms, the jobs stream's length
 * (read from Redis when scraped), events fanned out, open sockets, and
 * HTTP durations by route and status.
 */
export function createMetrics(o: MetricsOptions) {
  const registry = new Registry()
  registry.setDefaultLabels({ role: o.role })
  // The event-loop lag monitor samples on a timer: at prom-client's default 10 ms it wakes an idle
  // process a hundred times a second; a long block still shows at 100 ms, and scrapes are seconds apart.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 })
  const registers = [registry]
  const { tasks, runSeconds, queueWaitSeconds, claims, removed } = taskMetrics(registers)
  // Only the API serves HTTP and sockets: a worker would export these empty.
  const api = o.role === 'api' ? apiMetrics(registers) : undefined
  scrapedGauges(o, registers)
  if (o.cluster) clusterGauges(o.cluster, registers)

  return {
    registry,
    /** A task change, under its transition's metric label (see domain/tasks/task-transitions.ts). */
    countTransition: (label: string, type: string) => tasks.inc({ event: label, type }),
    observeRun: (type: string, outcome: string, seconds: number) => runSeconds.observe({ type, outcome }, seconds),
    /** One look in Postgres for ready tasks, and whether it claimed any. */
    countClaim: (claimed: number) => claims.inc({ result: claimed > 0 ? 'claimed' : 'empty' }),
    /** Finished tasks removed with their events past their retention, by status. */
    countRemoved: (status: string, n: number) => removed.inc({ status }, n),
    observeQueueWait: (queue: string, type: string, seconds: number) => queueWaitSeconds.observe({ queue, type }, Math.max(0, seconds)),
    eventPublished(lateMs: number | null) {
      api?.eventsFannedOut.inc()
      // Events read back from Postgres (gaps, catch-up) have no commit time: counted, not timed.
      if (lateMs !== null) api?.eventDelivery.observe(Math.max(0, lateMs) / 1000)
    },
    observeHttp: (method: string, route: string, status: number, seconds: number) =>
      api?.httpSeconds.observe({ method, route, status: String(status) }, seconds),
    async render(): Promise<Response> {
      return new Response(await registry.metrics(), { headers: { 'content-type': registry.contentType } })
    },
  }
}

export type Metrics = ReturnType<typeof createMetrics>

function taskMetrics(registers: Registers) {
  return {
    tasks: new Counter({
      name: 'taskline_tasks_total',
      help: 'Task changes produced by this process: created, completed, failed, retried, cancelled',
      labelNames: ['event', 'type'] as const,
      registers,
    }),
    runSeconds: new Histogram({
      name: 'taskline_task_run_seconds',
      help: 'How long one attempt of a handler ran',
      labelNames: ['type', 'outcome'] as const,
      buckets: secondsBuckets,
      registers,
    }),
    queueWaitSeconds: new Histogram({
      name: 'taskline_task_queue_wait_seconds',
      help: 'From when a task was due (created, or its delay or backoff over) to when a worker claimed it',
      labelNames: ['queue', 'type'] as const,
      buckets: secondsBuckets,
      registers,
    }),
    claims: new Counter({
      name: 'taskline_claims_total',
      help: 'Looks in Postgres for ready tasks by this worker, by whether they claimed any (empty looks are wasted round trips)',
      labelNames: ['result'] as const,
      registers,
    }),
    removed: new Counter({
      name: 'taskline_tasks_removed_total',
      help: 'Finished tasks this worker deleted with their events, past their retention',
      labelNames: ['status'] as const,
      registers,
    }),
  }
}

function apiMetrics(registers: Registers) {
  return {
    eventsFannedOut: new Counter({
      name: 'taskline_events_fanned_out_total',
      help: 'Events this API instance read and routed to its sockets (counted whether or not a socket here watches them)',
      registers,
    }),
    eventDelivery: new Histogram({
      name: 'taskline_event_delivery_seconds',
      help: "From a change's commit, as its producer saw it, to this API instance publishing it to its sockets (across hosts, clock skew adds in)",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    httpSeconds: new Histogram({
      name: 'taskline_http_request_duration_seconds',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: secondsBuckets,
      registers,
    }),
  }
}

/**
 * The cluster's task counts and live workers. Every API instance reports the
 * same figures from Postgres, labelled scope="cluster": aggregate them with
 * max, never sum (docs/observability.md).
 */
function clusterGauges(cluster: ClusterFigures, registers: Registers): void {
  new Gauge({
    name: 'taskline_tasks',
    help: 'Tasks in each status and queue, cluster-wide (every API instance reports the same value: use max, not sum)',
    labelNames: ['status', 'queue', 'scope'] as const,
    registers,
    async collect() {
      this.reset()
      for (const c of await cluster.tasks().catch(() => [])) this.set({ status: c.status, queue: c.queue, scope: 'cluster' }, c.n)
    },
  })
  new Gauge({
    name: 'taskline_workers_alive',
    help: 'Workers whose heartbeat is recent, cluster-wide (every API instance reports the same value: use max, not sum)',
    labelNames: ['scope'] as const,
    registers,
    async collect() {
      this.set({ scope: 'cluster' }, await cluster.workersAlive().catch(() => Number.NaN))
    },
  })
}

/** Gauges read when scraped: the jobs stream from Redis, the sockets from the API. */
function scrapedGauges(o: MetricsOptions, registers: Registers): void {
  new Gauge({
    name: 'taskline_jobs_stream_length',
    help: 'Jobs (wake-ups for ready tasks) on the jobs stream not yet read by a worker, or read in the last moment (deleted together)',
    registers,
    async collect() {
      const lengths = await Promise.all(o.keys.shards.map((s) => o.redis.xlen(s.jobs))).catch(() => [Number.NaN])
      this.set(lengths.reduce((a, b) => a + b, 0))
    },
  })
  if (o.openSockets) {
    const count = o.openSockets
    new Gauge({
      name: 'taskline_open_sockets',
      help: 'WebSockets open on this API instance',
      registers,
      collect() {
        this.set(count())
      },
    })
  }
}
