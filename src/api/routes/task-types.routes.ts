import { Hono } from 'hono'
import { z } from 'zod'
import type { TaskTypeCatalogue } from '../../domain/task-types/task-type-catalogue'
import { taskTypeSchema } from '../../domain/task-types/task-type'
import type { AppEnv } from '../auth'
import { describe, jsonResponse, validate } from '../openapi'
import { noQuery } from '../validation'
import { taskTypeNameSchema } from '../../domain/tasks/task'

const typeList = z.object({ results: z.array(taskTypeSchema) })

const nameParam = z.object({ name: taskTypeNameSchema.meta({ description: 'the type name' }) })

/** GET /api/task-types/: what a POST may name as its type, each with its payload schema and who runs it; DELETE forgets one nobody runs. */
export function taskTypesRoutes(deps: { taskTypes: TaskTypeCatalogue }) {
  return new Hono<AppEnv>()
    .delete(
      '/:name',
      describe({
        operationId: 'deleteTaskType',
        tags: ['tasks'],
        summary: 'Remove a registered task type (admin)',
        description:
          'Forgets a type a worker once registered and no live worker handles (a renamed or retired handler): POSTs of it are refused ' +
          'as unknown from then on, and /readyz stops listing it as unhandled. Its stored tasks stay; cancel them with ' +
          '`POST /api/tasks/cancel-pending/` and `type`, or they run if a worker registers the type again.',
        responses: { 204: { description: 'removed' } },
        errors: { 400: true, 403: 'forbidden: the token is not an admin', 404: true, 409: 'conflict: a built-in type, or one a live worker handles' },
      }),
      validate('param', nameParam),
      async (c) => {
        await deps.taskTypes.remove(c.var.principal, c.req.valid('param').name)
        return c.body(null, 204)
      },
    )
    .get(
      '/',
      describe({
        operationId: 'listTaskTypes',
        tags: ['tasks'],
        summary: 'List task types',
        description:
          "The built-in types and those workers registered from their handler modules, each with its payload's JSON Schema " +
          'and the live workers that handle it. A task of a type nobody handles is accepted and waits for a worker.',
        responses: { 200: jsonResponse('every known type', typeList) },
      }),
      validate('query', noQuery),
      async (c) => c.json({ results: await deps.taskTypes.list() } satisfies z.output<typeof typeList>),
    )
}
