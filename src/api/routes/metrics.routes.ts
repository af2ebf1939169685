import { Hono } from 'hono'
import { errorBody } from '../error-handler'
import { describe } from '../openapi'

/** GET /metrics in Prometheus text format; no token, so expose the port only to the monitoring network. */
export function metricsRoutes(render?: () => Promise<Response>) {
  return new Hono().get(
    '/metrics',
    describe({
      operationId: 'metrics',
      tags: ['operations'],
      public: true,
      summary: "This instance's metrics (Prometheus text format)",
      responses: { 200: { description: 'the metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
      errors: { 404: 'not_found: this app was built without metrics' },
    }),
    async (c) => {
      if (!render) return c.json(errorBody('not_found', 'this app was built without metrics'), 404)
      const res = await render()
      // Through c.body: a Response returned as is would lose the headers set before the handler (X-Request-Id).
      return c.body(await res.text(), 200, { 'Content-Type': res.headers.get('content-type') ?? 'text/plain' })
    },
  )
}
