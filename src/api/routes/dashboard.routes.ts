import { Hono } from 'hono'
import { errorBody } from '../error-handler'
import type { DashboardFile } from '../dashboard-files'
import { describe } from '../openapi'

// Everything the page loads is its own bundle; the live feed is a same-origin WebSocket, which 'self' covers.
// frame-ancestors 'none': the page holds a token, so no other site may frame it and click for the user.
const csp =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
const tags = ['operations']
const text = (description: string, type: string) => ({ description, content: { [type]: { schema: { type: 'string' as const } } } })

/** GET / (the dashboard page) and GET /<file> (its hashed scripts and styles); none needs a token, the page asks for one. */
export function dashboardRoutes(files: DashboardFile[]) {
  const page = files.find((f) => f.path === '/')
  const assets = new Map(files.filter((f) => f !== page).map((f) => [f.path.slice(1), f]))
  return new Hono()
    .get(
      '/',
      describe({
        operationId: 'dashboard',
        tags,
        public: true,
        summary: 'The dashboard (an HTML page)',
        responses: { 200: text('the page', 'text/html') },
        errors: { 404: 'not_found: this server was started without the dashboard' },
      }),
      (c) => {
        if (!page) return c.json(errorBody('not_found', 'this server was started without the dashboard'), 404)
        c.header('Content-Security-Policy', csp)
        // The page names its files by content hash: revalidated, it always loads the current ones.
        c.header('Cache-Control', 'no-cache')
        return c.body(page.body, 200, { 'Content-Type': page.contentType })
      },
    )
    .get(
      '/:file{[\\w.-]+\\.(?:js|css)}',
      describe({
        operationId: 'dashboardFile',
        tags,
        public: true,
        summary: 'A script or stylesheet of the dashboard (its name carries a content hash)',
        responses: {
          200: { description: 'the file', content: { 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } } },
        },
        errors: { 404: 'not_found: no such file' },
      }),
      (c) => {
        const file = assets.get(c.req.param('file'))
        if (!file) return c.json(errorBody('not_found', `no file ${c.req.path}`), 404)
        c.header('Cache-Control', 'public, max-age=31536000, immutable')
        return c.body(file.body, 200, { 'Content-Type': file.contentType })
      },
    )
}
