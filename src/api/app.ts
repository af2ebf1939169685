import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { cors } from 'hono/cors'
import { requestId } from 'hono/request-id'
import { secureHeaders } from 'hono/secure-headers'
import type { TaskDeps } from '../domain/tasks/task.service'
import { TaskTypeCatalogue } from '../domain/task-types/task-type-catalogue'
import { builtinTypes } from '../handlers/catalogue'
import type { Redis } from '../infra/redis'
import { authenticate, type AppEnv, type AuthMode, type TokenVerifier } from './auth'
import type { AuthThrottle } from './auth-throttle'
import { clientAddress } from './client-address'
import type { DashboardFile } from './dashboard-files'
import { createErrorHandler, errorBody } from './error-handler'
import { openApiDocument, withTaskTypes } from './openapi'
import { rateLimit } from './rate-limit'
import { dashboardRoutes } from './routes/dashboard.routes'
import { docsRoutes } from './routes/docs.routes'
import { healthRoutes } from './routes/health.routes'
import { metricsRoutes } from './routes/metrics.routes'
import { schedulesRoutes } from './routes/schedules.routes'
import { queuesRoutes } from './routes/queues.routes'
import { statsRoutes } from './routes/stats.routes'
import { workersRoutes } from './routes/workers.routes'
import { taskTypesRoutes } from './routes/task-types.routes'
import { tasksRoutes } from './routes/tasks.routes'
import { socketRoutes, type SocketGate } from './ws/socket.routes'

export interface AppDeps extends Omit<TaskDeps, 'taskTypes'> {
  redis: Redis
  /** Default: the built-in types (the http type disabled) and those registered in deps.db. */
  taskTypes?: TaskTypeCatalogue
  /** Default: AUTH=off, everyone is an admin (local development, tests). */
  auth?: { mode: AuthMode; verify: TokenVerifier; throttle?: AuthThrottle }
  http?: { maxBodyBytes: number; rateLimitPerSec: number; corsOrigins: string[] }
  sockets?: SocketGate
  /** PUBLIC_URL: where `next` links point; unset, they are relative (never on the request's Host). */
  publicUrl?: string
  /** The built dashboard, served at / (see dashboard-files.ts); without it / answers 404. */
  dashboard?: DashboardFile[]
  /** Renders GET /metrics; without it /metrics answers 404. */
  renderMetrics?: () => Promise<Response>
  /** Told of every finished request (metrics); the route is the matched pattern, not the raw path. */
  observeHttp?: (method: string, route: string, status: number, seconds: number) => void
}

const defaultHttp = { maxBodyBytes: 1024 * 1024, rateLimitPerSec: 0, corsOrigins: [] as string[] }

/** Every HTTP route; trailing slashes are optional everywhere (strict: false). */
export function createApp(appDeps: AppDeps) {
  const deps = { ...appDeps, taskTypes: appDeps.taskTypes ?? new TaskTypeCatalogue(appDeps.db, builtinTypes({ allowedOrigins: [] }), appDeps.logger) }
  const http = deps.http ?? defaultHttp
  const auth = authenticate(deps.auth ?? { mode: 'off', verify: async () => null })
  const limit = rateLimit({ redis: deps.redis, prefix: deps.keys.prefix, perSecond: http.rateLimitPerSec, logger: deps.logger })
  const app = new Hono<AppEnv>({ strict: false })
    // A client may pick its request id (to follow one call through the logs); hono replaces one that is
    // longer than this or has characters outside [A-Za-z0-9_=-], so a log line cannot be forged or bloated.
    .use(requestId({ limitLength: 64 }))
    .use(async function accessLog(c, next) {
      const started = performance.now()
      // Read before the request is handled: once Bun has upgraded it to a socket, the peer is no longer known here.
      const address = clientAddress(c)
      await next()
      const seconds = (performance.now() - started) / 1000
      const status = c.get('upgraded') ? 101 : c.res.status
      deps.observeHttp?.(c.req.method, c.req.routePath, status, seconds)
      deps.logger.info('http', {
        requestId: c.get('requestId'),
        method: c.req.method,
        path: c.req.path,
        status,
        // Who did it, so a DELETE can be attributed: the token id (null when AUTH=off or unauthenticated) and the peer.
        owner: c.get('principal')?.ownerId ?? null,
        address,
        ms: Math.round(seconds * 10_000) / 10,
      })
    })
    .use(secureHeaders())
  if (http.corsOrigins.length) app.use('/api/*', cors({ origin: http.corsOrigins, exposeHeaders: ['Retry-After', 'X-Request-Id'] }))
  // The document is generated from the finished app's routes, once, on first request (again if that failed).
  let document: ReturnType<typeof openApiDocument> | undefined
  const built = () =>
    (document ??= openApiDocument(routes).catch((e) => {
      document = undefined
      throw e
    }))
  const openApi = async (): Promise<object> => withTaskTypes(await built(), await deps.taskTypes.list())
  const routes = app
    .use(
      '/api/*',
      bodyLimit({
        maxSize: http.maxBodyBytes,
        onError: (c) => c.json(errorBody('payload_too_large', `request body must be at most ${http.maxBodyBytes} bytes`), 413),
      }),
    )
    .route('/', healthRoutes(deps))
    .route('/', docsRoutes(openApi))
    .route('/', metricsRoutes(deps.renderMetrics))
    .route('/', dashboardRoutes(deps.dashboard ?? []))
    .use('/api/*', auth, limit)
    // Upgrades count against the same per-token limit as requests: each one costs lookups before the socket opens.
    .use('/ws/*', auth, limit)
    .route('/api/tasks', tasksRoutes(deps))
    .route('/api/task-types', taskTypesRoutes(deps))
    .route('/api/schedules', schedulesRoutes(deps))
    .route('/api/queues', queuesRoutes(deps))
    .route('/api/stats', statsRoutes(deps))
    .route('/api/workers', workersRoutes(deps))
    .route('/ws', socketRoutes(deps, { corsOrigins: http.corsOrigins, gate: deps.sockets }))
    .notFound((c) => c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`), 404))
    .onError(createErrorHandler(deps.logger))
  return routes
}

export type AppType = ReturnType<typeof createApp>
