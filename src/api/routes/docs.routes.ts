import { Hono } from 'hono'
import { z } from 'zod'
// Imported as text, not read from node_modules at run time: the bundler then
// embeds them, so /docs works offline and in a `bun build --compile` binary.
import swaggerBundle from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'text' }
import swaggerCss from 'swagger-ui-dist/swagger-ui.css' with { type: 'text' }
import { errorBody } from '../error-handler'
import { describe, jsonResponse } from '../openapi'

// The source maps are not shipped; without this line browsers' devtools ask for them and get 404s.
const withoutSourceMap = (text: string) => text.replace(/\n?\/[/*]# sourceMappingURL=\S+(\s*\*\/)?\s*$/, '\n')

// window.ui for the curious in devtools; validatorUrl null keeps the page from calling validator.swagger.io.
const init = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  persistAuthorization: true,
  validatorUrl: null,
})
`

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Taskline API reference</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`

// A Map, not an object: a name from the URL such as __proto__ or toString must find nothing.
const assets = new Map<string, { type: string; body: string }>([
  ['swagger-ui-bundle.js', { type: 'text/javascript; charset=utf-8', body: withoutSourceMap(swaggerBundle) }],
  ['swagger-ui.css', { type: 'text/css; charset=utf-8', body: withoutSourceMap(swaggerCss) }],
  ['init.js', { type: 'text/javascript; charset=utf-8', body: init }],
])

// Everything the page loads comes from here: no CDN, no inline script. Swagger UI styles elements inline.
const csp =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'self'"
const tags = ['operations']
const html = (description: string) => ({ description, content: { 'text/html': { schema: { type: 'string' as const } } } })

/** GET /openapi.json and the interactive reference at GET /docs; neither needs a token. */
export function docsRoutes(document: () => Promise<object>) {
  return new Hono()
    .get(
      '/openapi.json',
      describe({
        operationId: 'getOpenApi',
        tags,
        public: true,
        summary: 'This document',
        responses: { 200: jsonResponse('the OpenAPI 3.1 document', z.record(z.string(), z.unknown())) },
      }),
      async (c) => c.json(await document()),
    )
    .get(
      '/docs',
      describe({ operationId: 'docs', tags, public: true, summary: 'Interactive API reference (Swagger UI)', responses: { 200: html('an HTML page') } }),
      (c) => {
        c.header('Content-Security-Policy', csp)
        return c.html(page)
      },
    )
    .get(
      '/docs/:asset',
      describe({
        operationId: 'docsAsset',
        tags,
        public: true,
        summary: 'A script or stylesheet of the reference page',
        parameters: [{ in: 'path', name: 'asset', required: true, schema: { type: 'string', enum: [...assets.keys()] } }],
        responses: {
          200: { description: 'the file', content: { 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } } },
        },
        errors: { 404: 'not_found: no such file' },
      }),
      (c) => {
        const asset = assets.get(c.req.param('asset'))
        if (!asset) return c.json(errorBody('not_found', `no file ${c.req.param('asset')} under /docs`), 404)
        c.header('Cache-Control', 'public, max-age=3600')
        return c.body(asset.body, 200, { 'Content-Type': asset.type })
      },
    )
}
