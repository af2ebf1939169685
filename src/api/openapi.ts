import type { Hono, ValidationTargets } from 'hono'
import { describeRoute, generateSpecs, resolver, uniqueSymbol, type DescribeRouteOptions } from 'hono-openapi'
import { z } from 'zod'
import type { TaskTypeInfo } from '../domain/task-types/task-type'
import { type MoreProblems, validate as validateOnly } from './validation'

/**
 * /openapi.json is generated from the routes themselves: each route carries a
 * describeRoute() beside its handler, and the validators below mark the zod
 * schema they validate with, so parameters and request bodies in the document
 * are the very schemas that check requests (no second copy to drift).
 */

/**
 * validate() from ./validation (same behaviour, same error shape) plus the
 * marker hono-openapi reads to document the schema as parameters or a body.
 */
export const validate = <T extends keyof ValidationTargets, S extends z.ZodType>(target: T, schema: S, more?: MoreProblems) =>
  Object.assign(validateOnly(target, schema, more), { [uniqueSymbol]: { target, ...resolver(schema) } })

/** The one error shape every failure has (see errorBody in ./error-handler). */
export const errorSchema = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'machine-readable: validation_error, invalid_json, unauthorized, not_found, conflict, ...' }),
      message: z.string().meta({ description: 'one sentence for a human' }),
      details: z
        .array(z.object({ path: z.string().meta({ description: 'dotted field path; "" for the whole body' }), message: z.string() }))
        .optional()
        .meta({ description: 'on validation_error: one entry per problem; on readyz: one per failed probe' }),
    }),
  })
  .meta({ id: 'Error' })

const errorRef = { $ref: '#/components/schemas/Error' }

const retryAfter = { 'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'integer' as const } } }

/** What each status means across the API; a route may say more precisely. */
const errorMeaning = {
  400: 'validation_error (details name each field) or invalid_json',
  401: 'unauthorized: no token, or an invalid or revoked one (never with AUTH=off)',
  403: 'forbidden_origin: a browser page whose Origin is neither this host nor in CORS_ORIGINS',
  404: "not_found: no such task, or another owner's (the two are indistinguishable)",
  409: 'conflict',
  413: 'payload_too_large: the body is over MAX_BODY_BYTES',
  415: 'unsupported_media_type: send Content-Type: application/json',
  426: 'upgrade_required: this endpoint speaks WebSocket',
  429: 'rate_limited (RATE_LIMIT_PER_SEC) or too_many_connections (sockets); see Retry-After',
  500: 'internal_error: carries the request id and nothing else; the detail is in the log',
  503: 'unavailable: Postgres is not answering; see Retry-After',
} as const
export type ErrorStatus = keyof typeof errorMeaning

export function errorResponse(status: ErrorStatus, description: string = errorMeaning[status]) {
  return {
    description,
    ...(status === 429 || status === 503 ? { headers: retryAfter } : {}),
    content: { 'application/json': { schema: errorRef } },
  }
}

/** A JSON response documented from the zod schema the handler's value is checked against. */
export function jsonResponse(description: string, schema: z.ZodType) {
  // Responses show what the server sends, so the output side of each schema.
  return { description, content: { 'application/json': { schema: resolver(schema, { options: { io: 'output' } }) } } }
}

/** Errors every /api route can answer besides its own. */
const apiErrors: ErrorStatus[] = [401, 429, 500, 503]

type Described = Omit<DescribeRouteOptions, 'responses'> & {
  responses: NonNullable<DescribeRouteOptions['responses']>
  /** Error statuses this route answers; the common /api ones are added unless public. */
  errors?: Partial<Record<ErrorStatus, string | true>>
  /** No token needed (health, docs). */
  public?: boolean
}

/** describeRoute with the shared error responses, each referencing the Error schema. */
export function describe({ errors = {}, public: isPublic, responses, ...spec }: Described) {
  const all: Partial<Record<ErrorStatus, string | true>> = { ...(isPublic ? {} : Object.fromEntries(apiErrors.map((s) => [s, true]))), ...errors }
  const errorResponses = Object.fromEntries(
    Object.entries(all).map(([status, text]) => [status, errorResponse(Number(status) as ErrorStatus, text === true ? undefined : text)]),
  )
  return describeRoute({ ...spec, ...(isPublic ? { security: [] } : {}), responses: { ...responses, ...errorResponses } })
}

const description = `Taskline stores tasks in Postgres, runs them on workers, and pushes every change to WebSocket subscribers.

Every error has one shape, \`{"error": {"code", "message", "details?"}}\` (the \`Error\` schema), and every response carries an \`X-Request-Id\`.
Trailing slashes are optional on every path.

**Authentication.** Send \`Authorization: Bearer <token>\` on every \`/api\` and \`/ws\` request (a WebSocket upgrade may instead offer
\`Sec-WebSocket-Protocol: taskline, <token>\`, and the server selects \`taskline\`; or send \`?token=\`). Create a token with \`bun run token create --name NAME\`. A server started with
\`AUTH=off\` (\`bun run dev\`, tests) needs no token and treats everyone as an admin. \`/healthz\`, \`/readyz\`, \`/openapi.json\` and \`/docs\`
never need one.`

/**
 * The OpenAPI 3.1 document for an app built by createApp. The README spells
 * /api and /ws paths with a trailing slash, so the document does too.
 */
// biome-ignore lint/suspicious/noExplicitAny: the document is built from any app, whatever its env, schema and base path
export async function openApiDocument(app: Hono<any, any, any>) {
  const spec = await generateSpecs(app, {
    documentation: {
      info: { title: 'Taskline API', version: '0.1.0', description, license: { name: 'MIT', identifier: 'MIT' } },
      tags: [
        { name: 'tasks', description: 'Create, read, change and follow tasks' },
        { name: 'schedules', description: 'Cron schedules that create tasks' },
        { name: 'websockets', description: 'Live changes over WebSocket (GET with Upgrade: websocket)' },
        { name: 'operations', description: 'Health checks and this reference' },
      ],
      security: [{ bearerAuth: [] }],
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API token (tl_<id>_<secret>) from `bun run token create`. Not checked when the server runs with AUTH=off.',
          },
        },
        schemas: componentSchemas(errorSchema),
      },
    },
    // /openapi.json ends in ".json" and would otherwise be skipped as a static file.
    excludeStaticFile: false,
    // The library's own 400 has a different shape; ours is the Error schema.
    defaultValidationErrorResponse: errorResponse(400),
  })
  const paths = Object.fromEntries(
    Object.entries(spec.paths).map(([path, item]) => [/^\/(api|ws)\//.test(path) && !path.endsWith('/') ? `${path}/` : path, item]),
  )
  return { ...spec, paths }
}

/**
 * Named component schemas straight from zod 4's own converter: a schema with an
 * id comes out as a $ref plus $defs, and the $defs are the components.
 */
function componentSchemas(...schemas: z.ZodType[]): Record<string, object> {
  const defs = schemas.map((schema) => z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'output' }).$defs)
  return JSON.parse(JSON.stringify(Object.assign({}, ...defs)).replaceAll('"#/$defs/', '"#/components/schemas/'))
}

/** A component name OpenAPI accepts for a type's payload schema (task type names may hold ':'). */
export const payloadComponent = (type: string) => `TaskPayload.${type.replace(/[^A-Za-z0-9._-]/g, '_')}`

/**
 * The document with the task types known now: each payload's JSON Schema as
 * a component, and POST /api/tasks/ saying which one applies to which type
 * (JSON Schema's if/then, which OpenAPI 3.1 carries as it is). Types are
 * registered while the API runs, so this part is added to each answer, not
 * to the document built once.
 */
// biome-ignore lint/suspicious/noExplicitAny: the generated document's paths are plain JSON, walked by name
export function withTaskTypes<D extends { paths: Record<string, any>; components?: { schemas?: Record<string, unknown> } }>(doc: D, types: TaskTypeInfo[]): D {
  const body = doc.paths['/api/tasks/']?.post?.requestBody?.content?.['application/json']?.schema
  if (!body) return doc
  const schemas: Record<string, unknown> = { ...doc.components?.schemas }
  for (const t of types) {
    const name = payloadComponent(t.name)
    // Its own definitions (zod writes recursive parts there) become components beside it, their refs following.
    const { $schema: _, $defs, ...payload } = rebaseRefs(t.payload_schema, name) as Record<string, unknown>
    for (const [def, s] of Object.entries(($defs ?? {}) as Record<string, unknown>)) schemas[`${name}.${def}`] = s
    schemas[name] = { ...payload, description: `payload of task type "${t.name}"` }
  }
  const names = types.map((t) => t.name)
  const createBody = {
    ...body,
    properties: {
      ...body.properties,
      type: { ...body.properties.type, examples: names, description: `one of the task types: ${names.join(', ')} (GET /api/task-types/)` },
    },
    // demo is the default type: its condition matches a body without one too.
    allOf: types.map((t) => ({
      if: { properties: { type: { const: t.name } }, ...(t.name === 'demo' ? {} : { required: ['type'] }) },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then, never awaited
      then: { properties: { payload: { $ref: `#/components/schemas/${payloadComponent(t.name)}` } } },
    })),
  }
  const post = doc.paths['/api/tasks/'].post
  const paths = {
    ...doc.paths,
    '/api/tasks/': {
      ...doc.paths['/api/tasks/'],
      post: { ...post, requestBody: { ...post.requestBody, content: { 'application/json': { schema: createBody } } } },
    },
  }
  return { ...doc, paths, components: { ...doc.components, schemas } }
}

/** A copy of a JSON Schema whose "#/$defs/x" refs point at the components "<name>.x". */
function rebaseRefs(value: unknown, name: string): unknown {
  if (Array.isArray(value)) return value.map((v) => rebaseRefs(v, name))
  if (typeof value !== 'object' || value === null) return value
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      k === '$ref' && typeof v === 'string' && v.startsWith('#/$defs/') ? `#/components/schemas/${name}.${v.slice('#/$defs/'.length)}` : rebaseRefs(v, name),
    ]),
  )
}
