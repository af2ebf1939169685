import { Hono } from 'hono'
import { sql } from 'kysely'
import { z } from 'zod'
import type { Db } from '../../infra/db'
import type { Redis } from '../../infra/redis'
import { errorBody } from '../error-handler'
import { describe, jsonResponse } from '../openapi'
import type { TaskTypeCatalogue } from '../../domain/task-types/task-type-catalogue'
import { unservedQueues } from '../../domain/workers/worker.repository'

const tags = ['operations']
const healthy = z.object({ status: z.literal('ok') })
const ready = z.object({
  status: z.literal('ready'),
  database: z.literal('ok'),
  redis: z.literal('ok'),
  unhandled_types: z.array(z.string()).meta({ description: 'task types no live worker handles: their tasks wait (see GET /api/task-types/)' }),
  unserved_queues: z.array(z.string()).meta({ description: 'queues with ready tasks that no live worker serves (QUEUES): their tasks wait' }),
})

const withTimeout = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), ms))])

async function check(probe: () => Promise<unknown>): Promise<string> {
  try {
    await withTimeout(probe(), 2000)
    return 'ok'
  } catch (e) {
    return e instanceof Error ? e.message : String(e)
  }
}

export function healthRoutes(deps: { db: Db; redis: Redis; taskTypes: TaskTypeCatalogue }) {
  return new Hono()
    .get(
      '/healthz',
      describe({
        operationId: 'healthz',
        tags,
        public: true,
        summary: 'Liveness',
        description: 'The process is up; touches neither Postgres nor Redis.',
        responses: { 200: jsonResponse('up', healthy) },
      }),
      (c) => c.json({ status: 'ok' } satisfies z.output<typeof healthy>),
    )
    .get(
      '/readyz',
      describe({
        operationId: 'readyz',
        tags,
        public: true,
        summary: 'Readiness',
        description:
          'Postgres and Redis both answer within 2 seconds. Also names the task types no live worker handles and the queues with ready tasks no live worker serves.',
        responses: { 200: jsonResponse('ready', ready) },
        errors: { 503: 'unavailable: details name each probe that failed (path "database" or "redis") and why' },
      }),
      async (c) => {
        const [database, redis] = await Promise.all([check(() => sql`select 1`.execute(deps.db)), check(() => deps.redis.ping())])
        const down = Object.entries({ database, redis }).filter(([, v]) => v !== 'ok')
        if (down.length === 0) {
          // Detail, not a failure: the API accepts such tasks, and they wait for a worker.
          const [types, unserved] = await Promise.all([deps.taskTypes.list(), unservedQueues(deps.db)])
          const unhandled = types.filter((t) => !t.handled).map((t) => t.name)
          return c.json({
            status: 'ready',
            database: 'ok',
            redis: 'ok',
            unhandled_types: unhandled,
            unserved_queues: unserved,
          } satisfies z.output<typeof ready>)
        }
        // The one error shape every failure has; details say which probe failed and why.
        const names = down.map(([k]) => k).join(' and ')
        return c.json(
          errorBody(
            'unavailable',
            `${names} not answering`,
            down.map(([path, message]) => ({ path, message })),
          ),
          503,
        )
      },
    )
}
