import { Hono } from 'hono'
import { z } from 'zod'
import * as workers from '../../domain/workers/worker.service'
import { workerSchema } from '../../domain/workers/worker'
import type { Db } from '../../infra/db'
import type { AppEnv } from '../auth'
import { describe, jsonResponse, validate } from '../openapi'
import { noQuery } from '../validation'

const docs = {
  listWorkers: describe({
    operationId: 'listWorkers',
    tags: ['workers'],
    summary: 'List workers (admin)',
    description: 'Live workers, and those that stopped or died in the last hour, newest first, from the heartbeats each worker writes every few seconds.',
    responses: { 200: jsonResponse('every worker', z.object({ results: z.array(workerSchema) })) },
    errors: { 403: 'forbidden: the token is not an admin' },
  }),
}

/** /api/workers: the fleet, from its heartbeats. */
export function workersRoutes(deps: { db: Db }) {
  return new Hono<AppEnv>().get('/', docs.listWorkers, validate('query', noQuery), async (c) =>
    c.json({ results: await workers.listWorkers(deps, c.var.principal) }),
  )
}
