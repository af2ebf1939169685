import { Hono } from 'hono'
import { z } from 'zod'
import * as tasks from '../../domain/tasks/task.service'
import { createTaskSchema, listTasksQuerySchema, taskIdSchema, updateTaskSchema } from '../../domain/tasks/task'
import type { AppEnv } from '../auth'
import { requireJson, validate } from '../validation'

const idParam = z.object({ id: taskIdSchema })
const idempotencyHeader = z.object({
  'idempotency-key': z.string().min(1, 'Idempotency-Key must not be empty').max(200, 'Idempotency-Key must be at most 200 characters').optional(),
})

export function tasksRoutes(deps: tasks.TaskDeps) {
  return new Hono<AppEnv>()
    .post('/', requireJson(), validate('header', idempotencyHeader), validate('json', createTaskSchema), async (c) => {
      const key = c.req.valid('header')['idempotency-key']
      const { task, created } = await tasks.createTask(deps, c.var.principal, c.req.valid('json'), key)
      return c.json(task, created ? 201 : 200)
    })
    .get('/', validate('query', listTasksQuerySchema), async (c) => {
      const query = c.req.valid('query')
      const { tasks: results, nextCursor } = await tasks.listTasks(deps, c.var.principal, query)
      let next: string | null = null
      if (nextCursor !== null) {
        const url = new URL(c.req.url)
        url.searchParams.set('cursor', String(nextCursor))
        next = url.toString()
      }
      return c.json({ results, next })
    })
    .get('/:id', validate('param', idParam), async (c) => c.json(await tasks.getTask(deps, c.var.principal, c.req.valid('param').id)))
    .patch('/:id', requireJson(), validate('param', idParam), validate('json', updateTaskSchema), async (c) =>
      c.json(await tasks.updateTaskTitle(deps, c.var.principal, c.req.valid('param').id, c.req.valid('json').title)),
    )
    .delete('/:id', validate('param', idParam), async (c) => {
      await tasks.deleteTask(deps, c.var.principal, c.req.valid('param').id)
      return c.body(null, 204)
    })
    .post('/:id/cancel', validate('param', idParam), async (c) => c.json(await tasks.cancelTask(deps, c.var.principal, c.req.valid('param').id)))
    .post('/:id/retry', validate('param', idParam), async (c) => c.json(await tasks.retryTask(deps, c.var.principal, c.req.valid('param').id)))
    .get('/:id/events', validate('param', idParam), async (c) => {
      const id = c.req.valid('param').id
      return c.json({ task_id: id, results: await tasks.listTaskEvents(deps, c.var.principal, id) })
    })
}
