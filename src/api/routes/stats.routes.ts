import { Hono } from 'hono'
import * as stats from '../../domain/stats/stats.service'
import { statsSchema } from '../../domain/stats/stats'
import type { AppEnv } from '../auth'
import { describe, jsonResponse, validate } from '../openapi'
import { noQuery } from '../validation'

const docs = {
  getStats: describe({
    operationId: 'getStats',
    tags: ['stats'],
    summary: 'Task counts, throughput and run times',
    description:
      'Counts by status, queue and type (kept as running totals, so this stays cheap at any table size), tasks COMPLETED and FAILED in each ' +
      'of the last 60 minutes, and start-to-completion percentiles per type over the last hour. A non-admin token sees its own tasks only.',
    responses: { 200: jsonResponse('the figures', statsSchema) },
  }),
}

/** /api/stats: what the dashboard's counts and chart read. */
export function statsRoutes(deps: stats.StatsDeps) {
  return new Hono<AppEnv>().get('/', docs.getStats, validate('query', noQuery), async (c) => c.json(await stats.getStats(deps, c.var.principal)))
}
