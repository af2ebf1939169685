/**
 * HTTP calls to the Taskline API and the mapping of every way they fail to
 * an error class main.ts turns into one line for the user.
 */
import type { z } from 'zod'
import { ApiError } from '../client/api-error'
import { eventPages } from '../client/event-pages'
import { paramOfNext } from '../client/next-link'
import { renderApiError } from './format'
import { eventListSchema, taskListSchema, taskSchema } from './schemas'
import { scheduleListSchema, scheduleSchema } from './schedules'
import { queueListSchema, queueSchema } from './queues'

export { ApiError, paramOfNext }

/** No HTTP answer at all: refused, DNS, TLS, timeout. */
export class UnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`the Taskline API is not reachable at ${url} (${reason})`)
    this.name = 'UnreachableError'
  }
}

/** 401: the API wants a token we did not send, or rejected the one we sent. */
export class UnauthorizedError extends Error {
  constructor(url: string, hadToken: boolean) {
    super(
      hadToken
        ? `the API at ${url} rejected the token: check TASKLINE_TOKEN (or --token)`
        : `the API at ${url} requires a token: set TASKLINE_TOKEN (or pass --token)`,
    )
    this.name = 'UnauthorizedError'
  }
}

/** Something answered, but not like the Taskline API (wrong URL, a proxy's HTML page). */
export class BadResponseError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'BadResponseError'
  }
}

/** The lines to print on stderr for any error a command can meet. */
export function describeError(e: unknown): string[] {
  if (e instanceof ApiError) return renderApiError(e)
  if (e instanceof UnreachableError || e instanceof UnauthorizedError || e instanceof BadResponseError) return [`error: ${e.message}`]
  if (e instanceof Error && e.name === 'AbortError') return ['error: interrupted']
  return [`error: ${e instanceof Error ? e.message : String(e)}`]
}

export interface ClientOptions {
  /** Base URL of the API, e.g. http://localhost:8000 (a path prefix is kept, for a proxy). */
  url: string
  token?: string
  timeoutMs?: number
  signal?: AbortSignal
}

export type Client = ReturnType<typeof createClient>

/** Where and how every request of one client goes. */
interface Connection {
  base: string
  token?: string
  timeoutMs: number
  signal?: AbortSignal
}

export function createClient(opts: ClientOptions) {
  const c: Connection = { base: opts.url.replace(/\/+$/, ''), token: opts.token, timeoutMs: opts.timeoutMs ?? 30_000, signal: opts.signal }
  const taskPath = (id: number) => `/api/tasks/${id}/`
  /** One page of a task's history: up to `limit` changes with seq > afterSeq. */
  const listEvents = (id: number, q: { afterSeq?: number; limit?: number } = {}) => {
    const params = new URLSearchParams({ after_seq: String(q.afterSeq ?? 0), limit: String(q.limit ?? 1000) })
    return request(c, 'GET', `${taskPath(id)}events/?${params}`, eventListSchema)
  }
  return {
    baseUrl: c.base,
    createTask: (input: {
      title: string
      type?: string
      payload?: Record<string, unknown>
      max_attempts?: number
      delay_ms?: number
      run_at?: string
      queue?: string
      priority?: number
      depends_on?: number[]
    }) => request(c, 'POST', '/api/tasks/', taskSchema, input),
    listTasks: (q: { status?: string; queue?: string; limit?: number; cursor?: number }) => {
      const params = new URLSearchParams()
      for (const [k, v] of Object.entries(q)) if (v !== undefined) params.set(k, String(v))
      return request(c, 'GET', `/api/tasks/${params.size ? `?${params}` : ''}`, taskListSchema)
    },
    getTask: (id: number) => request(c, 'GET', taskPath(id), taskSchema),
    cancelTask: (id: number) => request(c, 'POST', `${taskPath(id)}cancel/`, taskSchema),
    retryTask: (id: number) => request(c, 'POST', `${taskPath(id)}retry/`, taskSchema),
    listEvents,
    listSchedules: () => request(c, 'GET', '/api/schedules/', scheduleListSchema),
    createSchedule: (input: {
      name: string
      cron: string
      timezone?: string
      task: { title: string; type?: string; payload?: Record<string, unknown>; max_attempts?: number; queue?: string; priority?: number }
    }) => request(c, 'POST', '/api/schedules/', scheduleSchema, input),
    listQueues: () => request(c, 'GET', '/api/queues/', queueListSchema),
    pauseQueue: (name: string) => request(c, 'POST', `/api/queues/${encodeURIComponent(name)}/pause/`, queueSchema),
    resumeQueue: (name: string) => request(c, 'POST', `/api/queues/${encodeURIComponent(name)}/resume/`, queueSchema),
    pauseSchedule: (id: number) => request(c, 'POST', `/api/schedules/${id}/pause/`, scheduleSchema),
    resumeSchedule: (id: number) => request(c, 'POST', `/api/schedules/${id}/resume/`, scheduleSchema),
    deleteSchedule: (id: number) =>
      send(c, 'DELETE', `/api/schedules/${id}/`, undefined).then(async (res) => {
        if (res.status === 401) throw new UnauthorizedError(c.base, Boolean(c.token))
        if (!res.ok)
          throw ApiError.fromBody(res.status, parseJson(await res.text().catch(() => '')), { message: `DELETE /api/schedules/${id}/ answered ${res.status}` })
      }),
    /** Every change after afterSeq, a page at a time, following `next` until it is null. */
    eventPages: (id: number, afterSeq = 0) => eventPages(afterSeq, (after) => listEvents(id, { afterSeq: after })),
    /** For the task's socket, which offers it as a subprotocol beside "taskline", not in the URL, which proxies log. */
    token: opts.token,
  }
}

async function request<S extends z.ZodType>(c: Connection, method: string, path: string, schema: S, body?: unknown): Promise<z.infer<S>> {
  const res = await send(c, method, path, body)
  const text = await res.text().catch(() => '')
  if (res.status === 401) throw new UnauthorizedError(c.base, Boolean(c.token))
  const json = parseJson(text)
  if (!res.ok) throw ApiError.fromBody(res.status, json, { message: `${method} ${path} answered ${res.status} ${res.statusText}`.trim() })
  if (!schema.safeParse(json).success) throw new BadResponseError(`${c.base} answered ${method} ${path} with something that is not a Taskline API response`)
  // The body as sent, not zod's copy: --json promises the API's JSON, key order included.
  return json as z.infer<S>
}

/** The fetch itself, with the client's timeout; no answer at all becomes an UnreachableError, unless the caller aborted. */
async function send(c: Connection, method: string, path: string, body: unknown): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (c.token) headers.authorization = `Bearer ${c.token}`
  const timeout = AbortSignal.timeout(c.timeoutMs)
  try {
    return await fetch(`${c.base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: c.signal ? AbortSignal.any([c.signal, timeout]) : timeout,
    })
  } catch (e) {
    if (c.signal?.aborted) throw e
    throw new UnreachableError(c.base, networkReason(e, timeout.aborted, c.timeoutMs))
  }
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : null
  } catch {
    return undefined
  }
}

function networkReason(e: unknown, timedOut: boolean, timeoutMs: number): string {
  if (timedOut) return `no answer within ${timeoutMs / 1000} s`
  const code = (e as { code?: unknown } | null)?.code
  if (code === 'ECONNREFUSED' || code === 'ConnectionRefused') return 'connection refused'
  if (code === 'ENOTFOUND') return 'host not found'
  return e instanceof Error ? e.message : String(e)
}
