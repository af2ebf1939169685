import { Hono } from 'hono'
import { z } from 'zod'
import * as queues from '../../domain/queues/queue.service'
import { queueParamSchema, queueSchema } from '../../domain/queues/queue'
import type { AppEnv } from '../auth'
import { describe, jsonResponse, validate } from '../openapi'
import { noQuery } from '../validation'

const tags = ['queues']
const oneQueue = (description: string) => ({ 200: jsonResponse(description, queueSchema) })

/** What /openapi.json says of each route, by operationId. */
const docs = {
  listQueues: describe({
    operationId: 'listQueues',
    tags,
    summary: 'List queues with their task counts',
    description: 'Queues with active tasks or paused. A non-admin token counts its own tasks only.',
    responses: { 200: jsonResponse('every queue', z.object({ results: z.array(queueSchema) })) },
  }),
  pauseQueue: describe({
    operationId: 'pauseQueue',
    tags,
    summary: 'Pause a queue (admin)',
    description: 'No worker starts its tasks until it is resumed; running ones finish. Pausing a paused queue changes nothing.',
    responses: oneQueue('the paused queue'),
    errors: { 400: true, 403: 'forbidden: the token is not an admin' },
  }),
  resumeQueue: describe({
    operationId: 'resumeQueue',
    tags,
    summary: 'Resume a queue (admin)',
    responses: oneQueue('the resumed queue'),
    errors: { 400: true, 403: 'forbidden: the token is not an admin' },
  }),
}

/** /api/queues: counts per queue, and pausing a queue for every worker. */
export function queuesRoutes(deps: queues.QueueDeps) {
  return new Hono<AppEnv>()
    .get('/', docs.listQueues, validate('query', noQuery), async (c) => c.json({ results: await queues.listQueues(deps, c.var.principal) }))
    .post('/:name/pause', docs.pauseQueue, validate('param', queueParamSchema), async (c) =>
      c.json(await queues.setPaused(deps, c.var.principal, c.req.valid('param').name, true)),
    )
    .post('/:name/resume', docs.resumeQueue, validate('param', queueParamSchema), async (c) =>
      c.json(await queues.setPaused(deps, c.var.principal, c.req.valid('param').name, false)),
    )
}
