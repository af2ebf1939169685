import { Hono, type Context, type Env, type Input, type MiddlewareHandler } from 'hono'
import { z } from 'zod'
import * as tasks from '../../domain/tasks/task.service'
import { deleteFinishedTasksByRequest } from '../../domain/tasks/task-retention.service'
import { bulkCreateSchema, createTasks, everyBadEntry, MAX_BULK_TASKS } from '../../domain/tasks/task-bulk.service'
import { cancelAllPending, cancelPendingSchema, retryAllFailed, retryFailedSchema } from '../../domain/tasks/task-bulk-actions.service'
import {
  createTaskSchema,
  deleteFinishedTasksQuerySchema,
  listTaskEventsQuerySchema,
  listTasksQuerySchema,
  taskIdSchema,
  taskSchema,
  updateTaskSchema,
} from '../../domain/tasks/task'
import { taskEventSchema } from '../../domain/task-events/task-event'
import type { AppEnv } from '../auth'
import { describe, jsonResponse, validate } from '../openapi'
import { requireJson } from '../validation'

const idParam = z.object({ id: taskIdSchema.meta({ description: 'task id' }) })
const idempotencyHeader = z.object({
  'idempotency-key': z
    .string()
    .min(1, 'Idempotency-Key must not be empty')
    .max(200, 'Idempotency-Key must be at most 200 characters')
    .optional()
    .meta({ description: 'makes a retried POST safe: the same key and body return the first task (200) instead of creating another' }),
})

/**
 * Types only: a validated target the client may leave out entirely (every
 * header here is optional), so the typed client's $post({ json }) needs no
 * `header: {}`. At run time the headers are validated exactly as before.
 */
const optionalInput = <E extends Env, P extends string, I extends Input>(mw: MiddlewareHandler<E, P, I>) =>
  mw as unknown as MiddlewareHandler<E, P, { in: Partial<NonNullable<I['in']>>; out: NonNullable<I['out']> }>

// Response bodies, documented in /openapi.json from these schemas.
const taskList = z.object({
  results: z.array(taskSchema),
  next: z.string().nullable().meta({ description: 'URL of the next (older) page, or null on the last one' }),
})
const eventList = z.object({
  task_id: z.number().int().positive(),
  results: z.array(taskEventSchema),
  next: z.string().nullable().meta({ description: 'URL of the next (newer) page, or null on the last one' }),
})
const taskBatch = z.object({ results: z.array(taskSchema).meta({ description: 'the tasks, in the order they were sent' }) })
const oneTask = (description: string) => ({ 200: jsonResponse(description, taskSchema) })
const tags = ['tasks']

export interface TasksRoutesDeps extends tasks.TaskDeps {
  /** PUBLIC_URL: the origin (and path prefix) `next` links are built on; unset, they are relative. */
  publicUrl?: string
}

/**
 * The link to another page of this request, with `params` changed. Never on
 * the request's Host: that header is the client's to choose, and a link on it
 * could send the next request, token included, anywhere.
 */
function pageLink(c: Context, publicUrl: string | undefined, params: Record<string, string>): string {
  const url = new URL(c.req.url)
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value)
  return `${publicUrl ?? ''}${url.pathname}${url.search}`
}

/** What /openapi.json says of each route, by operationId. */
const docs = {
  createTask: describe({
    operationId: 'createTask',
    tags,
    summary: 'Create a task',
    description: 'Stores the task PENDING and queues it. The payload is checked against the handler of its type.',
    responses: {
      201: jsonResponse('created', taskSchema),
      200: jsonResponse('the task an earlier request with the same Idempotency-Key created', taskSchema),
    },
    errors: { 400: true, 409: 'idempotency_conflict: the Idempotency-Key was used with a different body', 413: true, 415: true },
  }),
  createTasks: describe({
    operationId: 'createTasks',
    tags,
    summary: `Create up to ${MAX_BULK_TASKS} tasks at once`,
    description:
      'All or none, in one transaction: a bad entry is a 400 whose details name its index and field (`tasks.3.payload.to`), and nothing is created. ' +
      'An Idempotency-Key covers the whole batch.',
    responses: {
      201: jsonResponse('created', taskBatch),
      200: jsonResponse('the tasks an earlier request with the same Idempotency-Key created', taskBatch),
    },
    errors: { 400: true, 409: 'idempotency_conflict: the Idempotency-Key was used with a different batch', 413: true, 415: true },
  }),
  listTasks: describe({
    operationId: 'listTasks',
    tags,
    summary: 'List tasks, newest first',
    description: 'A non-admin token sees its own tasks only. Follow `next` for the following page.',
    responses: { 200: jsonResponse('one page of tasks', taskList) },
    errors: { 400: true },
  }),
  deleteFinishedTasks: describe({
    operationId: 'deleteFinishedTasks',
    tags,
    summary: 'Delete finished tasks of one status, finished before a time',
    description:
      'Deletes them with their events, a few hundred at a time, and answers how many. A non-admin token deletes only its own tasks. ' +
      'Each deleted task\'s WebSocket subscribers get a last message with `"deleted": true`. Workers do the same on their own past the `RETENTION_*` settings.',
    responses: { 200: jsonResponse('how many tasks were deleted', z.object({ deleted: z.number().int().min(0) })) },
    errors: { 400: true },
  }),
  getTask: describe({ operationId: 'getTask', tags, summary: 'Get one task', responses: oneTask('the task'), errors: { 400: true, 404: true } }),
  updateTask: describe({
    operationId: 'updateTask',
    tags,
    summary: "Change a task's title",
    responses: oneTask('the changed task'),
    errors: { 400: true, 404: true, 413: true, 415: true },
  }),
  deleteTask: describe({
    operationId: 'deleteTask',
    tags,
    summary: 'Delete a task',
    description: 'A running task is cancelled first. WebSocket subscribers get a last message with `"deleted": true`.',
    responses: { 204: { description: 'deleted' } },
    errors: { 400: true, 404: true },
  }),
  cancelTask: describe({
    operationId: 'cancelTask',
    tags,
    summary: 'Cancel a task',
    description: 'PENDING or PROCESSING -> CANCELLED, stored at once; a running handler is aborted.',
    responses: oneTask('the CANCELLED task'),
    errors: { 400: true, 404: true, 409: 'conflict: the task is not PENDING or PROCESSING' },
  }),
  retryTask: describe({
    operationId: 'retryTask',
    tags,
    summary: 'Retry a task',
    description: 'FAILED or CANCELLED -> PENDING with fresh attempts.',
    responses: oneTask('the PENDING task'),
    errors: { 400: true, 404: true, 409: 'conflict: the task is not FAILED or CANCELLED' },
  }),
  retryFailedTasks: describe({
    operationId: 'retryFailedTasks',
    tags,
    summary: 'Retry every FAILED task (of a queue or type)',
    description: "Your FAILED tasks (everyone's for an admin) go back to PENDING with fresh attempts, each with its event, as a retry of each would.",
    responses: { 200: jsonResponse('how many were retried', z.object({ retried: z.number().int().min(0) })) },
    errors: { 400: true, 415: true },
  }),
  cancelPendingTasks: describe({
    operationId: 'cancelPendingTasks',
    tags,
    summary: 'Cancel every PENDING task of a queue',
    description:
      "Your PENDING tasks of the queue (everyone's for an admin) become CANCELLED, each with its event, as a cancel of each would. Running ones are left alone.",
    responses: { 200: jsonResponse('how many were cancelled', z.object({ cancelled: z.number().int().min(0) })) },
    errors: { 400: true, 415: true },
  }),
  listTaskEvents: describe({
    operationId: 'listTaskEvents',
    tags,
    summary: "A task's changes, oldest first, a page at a time",
    description:
      'Up to `limit` changes with seq > `after_seq`. Follow `next` for the following page; it is null on the last one. ' +
      'A task still running gains changes later: ask again with `after_seq` set to the last seq seen.',
    responses: { 200: jsonResponse('one page of recorded changes', eventList) },
    errors: { 400: true, 404: true },
  }),
}

export function tasksRoutes(deps: TasksRoutesDeps) {
  return new Hono<AppEnv>()
    .post('/', docs.createTask, requireJson(), optionalInput(validate('header', idempotencyHeader)), validate('json', createTaskSchema), async (c) => {
      const key = c.req.valid('header')['idempotency-key']
      const { task, created } = await tasks.createTask(deps, c.var.principal, c.req.valid('json'), key, c.get('requestId'))
      return c.json(task, created ? 201 : 200)
    })
    .post(
      '/bulk',
      docs.createTasks,
      requireJson(),
      optionalInput(validate('header', idempotencyHeader)),
      validate('json', bulkCreateSchema, (body, c, refused) => everyBadEntry(deps, c.var.principal, body, refused)),
      async (c) => {
        const key = c.req.valid('header')['idempotency-key']
        const { tasks: results, created } = await createTasks(deps, c.var.principal, c.req.valid('json').tasks, key, c.get('requestId'))
        return c.json({ results }, created ? 201 : 200)
      },
    )
    .post('/retry-failed', docs.retryFailedTasks, requireJson(), validate('json', retryFailedSchema), async (c) =>
      c.json({ retried: await retryAllFailed(deps, c.var.principal, c.req.valid('json')) }),
    )
    .post('/cancel-pending', docs.cancelPendingTasks, requireJson(), validate('json', cancelPendingSchema), async (c) =>
      c.json({ cancelled: await cancelAllPending(deps, c.var.principal, c.req.valid('json')) }),
    )
    .get('/', docs.listTasks, validate('query', listTasksQuerySchema), async (c) => {
      const query = c.req.valid('query')
      const { tasks: results, nextCursor } = await tasks.listTasks(deps, c.var.principal, query)
      const next = nextCursor === null ? null : pageLink(c, deps.publicUrl, { cursor: String(nextCursor) })
      return c.json({ results, next })
    })
    .delete('/', docs.deleteFinishedTasks, validate('query', deleteFinishedTasksQuerySchema), async (c) =>
      c.json({ deleted: await deleteFinishedTasksByRequest(deps, c.var.principal, c.req.valid('query')) }),
    )
    .get('/:id', docs.getTask, validate('param', idParam), async (c) => c.json(await tasks.getTask(deps, c.var.principal, c.req.valid('param').id)))
    .patch('/:id', docs.updateTask, requireJson(), validate('param', idParam), validate('json', updateTaskSchema), async (c) =>
      c.json(await tasks.updateTaskTitle(deps, c.var.principal, c.req.valid('param').id, c.req.valid('json').title)),
    )
    .delete('/:id', docs.deleteTask, validate('param', idParam), async (c) => {
      await tasks.deleteTask(deps, c.var.principal, c.req.valid('param').id)
      return c.body(null, 204)
    })
    .post('/:id/cancel', docs.cancelTask, validate('param', idParam), async (c) =>
      c.json(await tasks.cancelTask(deps, c.var.principal, c.req.valid('param').id)),
    )
    .post('/:id/retry', docs.retryTask, validate('param', idParam), async (c) => c.json(await tasks.retryTask(deps, c.var.principal, c.req.valid('param').id)))
    .get('/:id/events', docs.listTaskEvents, validate('param', idParam), optionalInput(validate('query', listTaskEventsQuerySchema)), async (c) => {
      const id = c.req.valid('param').id
      const { events, nextAfterSeq } = await tasks.listTaskEvents(deps, c.var.principal, id, c.req.valid('query'))
      const next = nextAfterSeq === null ? null : pageLink(c, deps.publicUrl, { after_seq: String(nextAfterSeq) })
      return c.json({ task_id: id, results: events, next })
    })
}
