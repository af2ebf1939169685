import { Hono } from 'hono'
import { z } from 'zod'
import type { TaskTypeCatalogue } from '../../domain/task-types/task-type-catalogue'
import { taskTypeSchema } from '../../domain/task-types/task-type'
import type { AppEnv } from '../auth'
import { describe, jsonResponse } from '../openapi'

const typeList = z.object({ results: z.array(taskTypeSchema) })

/** GET /api/task-types/: what a POST may name as its type, each with its payload schema and who runs it. */
export function taskTypesRoutes(deps: { taskTypes: TaskTypeCatalogue }) {
  return new Hono<AppEnv>().get(
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
    async (c) => c.json({ results: await deps.taskTypes.list() } satisfies z.output<typeof typeList>),
  )
}
