import { Hono, type Context, type MiddlewareHandler } from 'hono'
import type { Server } from 'bun'
import { z } from 'zod'
import { afterSeqSchema, cursorString, taskIdSchema } from '../../domain/tasks/task'
import { getTask, type TaskDeps } from '../../domain/tasks/task.service'
import { DomainError, ValidationError } from '../../domain/errors'
import type { Principal } from '../../domain/tokens/token'
import { socketProtocol } from '../../client/socket-protocol'
import type { AppEnv } from '../auth'
import { errorBody } from '../error-handler'
import { describe, validate } from '../openapi'
import { checkWebSocketVersion } from './handshake'
import type { SocketData } from './socket-session'

// The token may ride on the URL (browsers cannot set headers on a WebSocket); authenticate() reads it.
const token = z
  .string()
  .max(200)
  .optional()
  .meta({ description: 'the API token, for clients that cannot set headers (browsers); or offer it as a subprotocol beside "taskline"' })

// OpenAPI has no words for a socket's messages, so the protocol is described in text (docs/websockets.md says the same).
const tags = ['websockets']
const socketErrors = { 403: true, 426: true, 429: 'too_many_connections: WS_MAX_CONNECTIONS or WS_MAX_CONNECTIONS_PER_TOKEN reached; see Retry-After' } as const
const closeCodesText = `Close codes: 1001 the server is shutting down (reconnect); 1003 the client sent a binary frame; 1008 the client sent text other than \`ping\`;
1009 a client frame over WS_MAX_MESSAGE_BYTES; 1011 the server could not load history (reconnect); 4008 the client read too slowly and
its buffer passed WS_MAX_BUFFERED_BYTES (reconnect with after_seq); 4401 the token was revoked; 4404 the task was deleted while the socket was connecting.

The socket only sends. A client may send the text \`ping\` and gets \`{"kind":"pong"}\` back.`
const upgraded = (messages: string) => ({ 101: { description: `Switching Protocols: the socket is open.\n\n${messages}\n\n${closeCodesText}` } })

/** Decides whether one more socket may open (connection limits); a reason when it may not. */
export interface SocketGate {
  admit(principal: Principal): string | null
}

class SocketRefused extends DomainError {}

// A slot frees only when some socket closes, which is rarely within a second; a slower retry spares a full server.
const socketRetryAfterS = 5

/** "null" (sandboxed frames, file:// pages) and anything unparsable are no host at all, so never this one. */
function isThisHost(origin: string, host: string | undefined): boolean {
  const originHost = URL.parse(origin)?.host
  return Boolean(originHost) && originHost === host
}

type SocketEnv = AppEnv & { Bindings: Server<SocketData> }

/** Refuses a socket from a foreign origin, or one past the connection limits, before any upgrade. */
function admitSocket(o: { corsOrigins: string[]; gate?: SocketGate }): MiddlewareHandler<SocketEnv> {
  return async function admitSocket(c, next) {
    const origin = c.req.header('origin')
    // Non-browser clients send no Origin; a browser page may connect from this host or an allowed origin.
    if (origin && !o.corsOrigins.includes(origin) && !isThisHost(origin, c.req.header('host'))) {
      throw new SocketRefused('forbidden_origin', `origin ${origin.slice(0, 200)} may not open sockets here; add it to CORS_ORIGINS`)
    }
    const refused = o.gate?.admit(c.var.principal)
    if (refused) {
      c.header('Retry-After', String(socketRetryAfterS))
      throw new SocketRefused('too_many_connections', refused)
    }
    await next()
  }
}

/** What /openapi.json says of each socket route, by operationId. */
const docs = {
  followAllTasks: describe({
    operationId: 'followAllTasks',
    tags,
    summary: "WebSocket: every task's changes",
    description:
      'Connect with a WebSocket client (`GET` with `Upgrade: websocket`); a plain GET gets 426. For dashboards: a non-admin token gets its own tasks only.',
    responses: upgraded(`Messages (JSON text frames):
- \`{"kind":"hello","cursor":N}\` first, unless \`?after=\` was given; N is where the feed stands.
- \`{"kind":"change","task_id","seq","status","progress","at","cursor","detail"}\` for each change of any task (the \`TaskEvent\` schema), in commit order.
  Keep the last \`cursor\` and reconnect with \`?after=<cursor>\` to resume from Postgres.
- \`{"kind":"pong"}\` after the client sends \`ping\`.`),
    errors: { 400: true, ...socketErrors },
  }),
  followTask: describe({
    operationId: 'followTask',
    tags,
    summary: 'WebSocket: one task, live',
    description:
      "Connect with a WebSocket client (`GET` with `Upgrade: websocket`); a plain GET gets 426. A missing task (or another owner's) is a 404 before any upgrade. " +
      'After the final status the socket stays open (the task may be retried); the client decides when to close.',
    responses:
      upgraded(`Messages (JSON text frames); each has \`task_id\`, \`status\`, \`seq\`, \`progress\` and \`at\`, and \`seq\` goes up by exactly one per change:
- \`{"kind":"snapshot", ..., "task": {...}}\` first: the current state, with the full \`Task\`. Not sent with \`?after_seq=\`.
- \`{"kind":"change", ..., "cursor", "detail"}\` for each change after it (the \`TaskEvent\` schema); the last one for a deleted task has \`"deleted": true\`.
- \`{"kind":"pong"}\` after the client sends \`ping\`.

To reconnect without a gap or a duplicate, pass the last seq seen as \`?after_seq=\`: the changes after it are replayed from Postgres, then live ones follow.`),
    errors: { 400: true, 404: true, ...socketErrors },
  }),
}

const allTasksQuery = z.strictObject({
  after: cursorString('after', Number.MAX_SAFE_INTEGER)
    .optional()
    .meta({ description: 'resume after this cursor (from Postgres) instead of starting with hello' }),
  token,
})
const taskParam = z.object({ id: taskIdSchema.meta({ description: 'task id' }) })
const taskQuery = z.strictObject({ after_seq: afterSeqSchema.optional().meta({ description: 'replay the changes with seq > after_seq, then go live' }), token })

/**
 * Upgrades happen here, after authentication, validation, the Origin check,
 * the connection limits and the existence check, so each refusal is an
 * ordinary JSON 4xx and never an open socket. Bun hands its server to fetch
 * as the second argument, which Hono exposes as c.env.
 */
export function socketRoutes(deps: TaskDeps, o: { corsOrigins: string[]; gate?: SocketGate }) {
  return new Hono<SocketEnv>()
    .use(checkWebSocketVersion)
    .use(admitSocket(o))
    .get('/tasks', docs.followAllTasks, validate('query', allTasksQuery), (c) =>
      upgrade(c, { feed: 'all', after: c.req.valid('query').after, principal: c.var.principal }),
    )
    .get('/tasks/:id', docs.followTask, validate('param', taskParam), validate('query', taskQuery), async (c) => {
      const { id } = c.req.valid('param')
      await getTask(deps, c.var.principal, id) // 404 before the upgrade, for a missing task and for another owner's
      return upgrade(c, { feed: 'task', taskId: id, afterSeq: c.req.valid('query').after_seq, principal: c.var.principal })
    })
}

function upgrade(c: Context<SocketEnv>, data: SocketData): Response {
  const headers = selectedProtocol(c)
  if (c.env?.upgrade(c.req.raw, { data, headers })) {
    c.set('upgraded', true)
    return new Response(null)
  }
  return Response.json(errorBody('upgrade_required', 'this endpoint speaks WebSocket: connect with a WebSocket client'), {
    status: 426,
    headers: { Upgrade: 'websocket' },
  })
}

/**
 * A client that offers protocols must get one selected or the handshake fails, and when
 * none is selected Bun answers with the client's first offer, which may be its token.
 * So the fixed name is always the one selected, and an offer without it is refused.
 */
function selectedProtocol(c: Context): { 'Sec-WebSocket-Protocol': string } | undefined {
  const offered =
    c.req
      .header('sec-websocket-protocol')
      ?.split(',')
      .map((p) => p.trim())
      .filter(Boolean) ?? []
  if (offered.length === 0) return undefined
  if (offered.includes(socketProtocol)) return { 'Sec-WebSocket-Protocol': socketProtocol }
  const message = `must include "${socketProtocol}" beside the token: new WebSocket(url, ["${socketProtocol}", token])`
  throw new ValidationError(`sec-websocket-protocol: ${message}`, [{ path: 'sec-websocket-protocol', message }])
}
