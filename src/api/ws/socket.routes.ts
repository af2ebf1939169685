import { Hono } from 'hono'
import type { Server } from 'bun'
import { z } from 'zod'
import { taskIdSchema } from '../../domain/tasks/task'
import { getTask, type TaskDeps } from '../../domain/tasks/task.service'
import { errorBody } from '../error-handler'
import { validate } from '../validation'
import type { SocketData } from './socket-session'

const cursor = z.coerce.number({ error: 'must be a non-negative integer' }).int().min(0).max(Number.MAX_SAFE_INTEGER)

/**
 * Upgrades happen here, after validation and the existence check, so a bad id
 * or a missing task is an ordinary JSON 400/404 and never an open socket.
 * Bun hands its server to fetch as the second argument, which Hono exposes as c.env.
 */
export function socketRoutes(deps: TaskDeps) {
  return new Hono<{ Bindings: Server<SocketData> }>()
    .get('/tasks', validate('query', z.strictObject({ after: cursor.optional() })), (c) =>
      upgrade(c.env, c.req.raw, { feed: 'all', after: c.req.valid('query').after }),
    )
    .get(
      '/tasks/:id',
      validate('param', z.object({ id: taskIdSchema })),
      validate('query', z.strictObject({ after_seq: cursor.optional() })),
      async (c) => {
        const { id } = c.req.valid('param')
        await getTask(deps, id) // 404 before the upgrade
        return upgrade(c.env, c.req.raw, { feed: 'task', taskId: id, afterSeq: c.req.valid('query').after_seq })
      },
    )
}

function upgrade(server: Server<SocketData> | undefined, req: Request, data: SocketData): Response {
  if (server?.upgrade(req, { data })) return new Response(null)
  return Response.json(errorBody('upgrade_required', 'this endpoint speaks WebSocket: connect with a WebSocket client'), {
    status: 426,
    headers: { Upgrade: 'websocket' },
  })
}
