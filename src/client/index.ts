/**
 * A typed client for Taskline. The HTTP side is Hono's RPC client over the
 * server's own route types (only types, and the WebSocket protocol name, a
 * constant without imports, come from the server, so this module pulls no
 * server code into a client bundle):
 *
 *   const api = createClient('http://127.0.0.1:8000', token)
 *   const res = await api.api.tasks.$post({ json: { title: 'hello' } })
 *   const task = await res.json()
 *
 * followTask() follows one task over its WebSocket and survives disconnects;
 * taskEvents() reads a task's history a page at a time.
 */
import { hc } from 'hono/client'
import type { AppType } from '../api/app'
import type { Task, TaskStatus } from '../domain/tasks/task'
import { socketProtocols } from '../domain/tokens/socket-protocol'

export type { AppType, Task, TaskStatus }

export function createClient(baseUrl: string, token?: string) {
  return hc<AppType>(baseUrl.replace(/\/$/, ''), token ? { headers: { Authorization: `Bearer ${token}` } } : undefined)
}

export type TaskClient = ReturnType<typeof createClient>

/** A `next` link is relative unless the server has a PUBLIC_URL; only its query matters here. */
const paramOfNext = (next: string | null, name: string) => (next === null ? null : new URL(next, 'http://api.invalid').searchParams.get(name))

/**
 * A task's changes with seq > afterSeq, oldest first, read a page (of up to
 * `limit`, 1000 at most) at a time by following `next`, so a long history
 * is never one answer, nor held whole here. A failed read throws.
 */
export async function* taskEvents(api: TaskClient, id: number, o: { afterSeq?: number; limit?: number } = {}) {
  const limit = String(o.limit ?? 1000)
  for (let after: string | null = String(o.afterSeq ?? 0); after !== null; ) {
    const res = await api.api.tasks[':id'].events.$get({ param: { id: String(id) }, query: { after_seq: after, limit } })
    if (!res.ok) throw new Error(`GET /api/tasks/${id}/events/ answered ${res.status}: ${await res.text()}`)
    const page = await res.json()
    yield* page.results
    after = paramOfNext(page.next, 'after_seq')
  }
}

/** What a task's socket sends, besides pong. */
export type TaskMessage =
  | { kind: 'snapshot'; task_id: number; status: TaskStatus; seq: number; progress: number; at: string; task: Task }
  | {
      kind: 'change'
      task_id: number
      status: TaskStatus
      seq: number
      progress: number
      at: string
      cursor: number
      detail: unknown
      deleted?: true
    }

export interface FollowOptions {
  /** Sent as a WebSocket subprotocol, which browsers can set and URLs do not log. */
  token?: string
  /** Each snapshot and change once, in seq order, across reconnects. */
  onChange: (message: TaskMessage) => void
  /** Every time a socket closes; reconnecting says whether another attempt follows. */
  onClose?: (info: { code: number; reason: string; reconnecting: boolean }) => void
  /** Backoff bounds in ms (defaults 250 and 10 000). */
  minDelayMs?: number
  maxDelayMs?: number
}

/** Close codes after which reconnecting cannot help: the task is gone, or the token was revoked. */
const finalCloseCodes = new Set([4401, 4404])

/**
 * Follows one task over ws(s)://…/ws/tasks/:id/. After a disconnect it
 * reconnects with jittered exponential backoff and resumes with ?after_seq=
 * the last seq seen, so nothing is missed; anything at or below that seq (a
 * replay overlapping the live feed) is dropped, so nothing is seen twice.
 * It stops when close() is called, after a "deleted" message, or on 4401/4404.
 */
export function followTask(baseUrl: string, id: number, o: FollowOptions): { close(): void } {
  const minDelay = o.minDelayMs ?? 250
  const maxDelay = o.maxDelayMs ?? 10_000
  let lastSeq: number | null = null
  let delay = minDelay
  let stopped = false
  let socket: WebSocket | null = null
  let timer: ReturnType<typeof setTimeout> | null = null

  const url = () => {
    const u = new URL(`/ws/tasks/${id}/`, baseUrl.replace(/^http/, 'ws'))
    if (lastSeq !== null) u.searchParams.set('after_seq', String(lastSeq))
    return u.toString()
  }

  const open = () => {
    timer = null
    if (stopped) return
    // The server selects the fixed protocol name and reads the token from the entry beside it.
    const ws = o.token ? new WebSocket(url(), socketProtocols(o.token)) : new WebSocket(url())
    socket = ws
    ws.onopen = () => {
      delay = minDelay
    }
    ws.onmessage = (e) => {
      if (typeof e.data !== 'string') return
      const m = JSON.parse(e.data) as TaskMessage | { kind: 'pong' }
      if (m.kind !== 'snapshot' && m.kind !== 'change') return
      if (lastSeq !== null && m.seq <= lastSeq) return
      lastSeq = m.seq
      o.onChange(m)
      if (m.kind === 'change' && m.deleted) stop(1000, 'task deleted')
    }
    ws.onclose = (e) => {
      if (socket !== ws) return
      socket = null
      if (finalCloseCodes.has(e.code)) stopped = true
      o.onClose?.({ code: e.code, reason: e.reason, reconnecting: !stopped })
      if (stopped) return
      // Jittered between delay and 2*delay, so many clients cut off at once do not all return at once.
      timer = setTimeout(open, delay + Math.random() * delay)
      delay = Math.min(delay * 2, maxDelay)
    }
  }

  const stop = (code = 1000, reason = 'closed by client') => {
    stopped = true
    if (timer) clearTimeout(timer)
    timer = null
    socket?.close(code, reason)
  }

  open()
  return { close: () => stop() }
}
