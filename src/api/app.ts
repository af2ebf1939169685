import { Hono } from 'hono'
import { requestId } from 'hono/request-id'
import type { TaskDeps } from '../domain/tasks/task.service'
import type { Redis } from '../infra/redis'
import { createErrorHandler, errorBody } from './error-handler'
import { healthRoutes } from './routes/health.routes'
import { tasksRoutes } from './routes/tasks.routes'
import { socketRoutes } from './ws/socket.routes'

export interface AppDeps extends TaskDeps {
  redis: Redis
}

/** Every HTTP route; trailing slashes are optional everywhere (strict: false). */
export function createApp(deps: AppDeps) {
  return new Hono({ strict: false })
    .use(requestId())
    .route('/', healthRoutes(deps))
    .route('/api/tasks', tasksRoutes(deps))
    .route('/ws', socketRoutes(deps))
    .notFound((c) => c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`), 404))
    .onError(createErrorHandler(deps.logger))
}

export type AppType = ReturnType<typeof createApp>
