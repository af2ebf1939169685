import { Hono, type Context } from 'hono'
import type { Server } from 'bun'
import { z } from 'zod'
import { taskIdSchema } from '../../domain/tasks/task'
import { getTask, type TaskDeps } from '../../domain/tasks/task.service'
import { DomainError } from '../../domain/errors'
import type { Principal } from '../../domain/tokens/token'
import type { AppEnv } from '../auth'
import { errorBody } from '../error-handler'
import { validate } from '../validation'
import type { SocketData } from './socket-session'

const cursor = z.coerce.number({ error: 'must be a non-negative integer' }).int().min(0).max(Number.MAX_SAFE_INTEGER)
// The token may ride on the URL (browsers cannot set headers on a WebSocket); authenticate() reads it.
const token = z.string().max(200).optional()

/** Decides whether one more socket may open (connection limits); a reason when it may not. */
export interface SocketGate {
  admit(principal: Principal): string | null
}

class SocketRefused extends DomainError {}

/**
 * Upgrades happen here, after authentication, validation, the Origin check,
 * the connection limits and the existence check, so each refusal is an
 * ordinary JSON 4xx and never an open socket. Bun hands its server to fetch
 * as the second argument, which Hono exposes as c.env.
 */
export function socketRoutes(deps: TaskDeps, o: { corsOrigins: string[]; gate?: SocketGate }) {
  return new Hono<AppEnv & { Bindings: Server<SocketData> }>()
    .use(async function checkOrigin(c, next) {
      const origin = c.req.header('origin')
      // Non-browser clients send no Origin; a browser page may connect from this host or an allowed origin.
      if (origin && !o.corsOrigins.includes(origin) && new URL(origin).host !== c.req.header('host')) {
        throw new SocketRefused('forbidden_origin', `origin ${origin} may not open sockets here; add it to CORS_ORIGINS`)
      }
      const refused = o.gate?.admit(c.var.principal)
      if (refused) throw new SocketRefused('too_many_connections', refused)
      await next()
    })
    .get('/tasks', validate('query', z.strictObject({ after: cursor.optional(), token })), (c) =>
      upgrade(c, { feed: 'all', after: c.req.valid('query').after, principal: c.var.principal }),
    )
    .get(
      '/tasks/:id',
      validate('param', z.object({ id: taskIdSchema })),
      validate('query', z.strictObject({ after_seq: cursor.optional(), token })),
      async (c) => {
        const { id } = c.req.valid('param')
        await getTask(deps, c.var.principal, id) // 404 before the upgrade, for a missing task and for another owner's
        return upgrade(c, { feed: 'task', taskId: id, afterSeq: c.req.valid('query').after_seq, principal: c.var.principal })
      },
    )
}

function upgrade(c: Context<AppEnv & { Bindings: Server<SocketData> }>, data: SocketData): Response {
  // A browser that offered protocols fails the handshake unless one is echoed back.
  // Echo a name ('taskline'), not the token, when the client offered both.
  const offered = c.req.header('sec-websocket-protocol')?.split(',').map((p) => p.trim()) ?? []
  const chosen = offered.find((p) => !p.startsWith('tl_')) ?? offered[0]
  const headers = chosen ? { 'Sec-WebSocket-Protocol': chosen } : undefined
  if (c.env?.upgrade(c.req.raw, { data, headers })) return new Response(null)
  return Response.json(errorBody('upgrade_required', 'this endpoint speaks WebSocket: connect with a WebSocket client'), {
    status: 426,
    headers: { Upgrade: 'websocket' },
  })
}
