/**
 * A typed client for Taskline (`taskline/client`). The HTTP side is Hono's RPC
 * client over the server's own route types. Only types and import-free
 * constants (the WebSocket protocol name, the status rules) come from the
 * server, so this folder pulls no server code into a client bundle; the CLI
 * and the dashboard use its error, follower and status modules too:
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
import type { Task } from '../domain/tasks/task'
import { ApiError } from './api-error'
import { eventPages } from './event-pages'

export type { AppType, Task }
export { ApiError, type ErrorDetail } from './api-error'
export { followTask, type FollowOptions, type TaskFollower, type TaskMessage, type TaskSnapshotMessage } from './follow-task'
export { eventPages, type EventPage } from './event-pages'
export { paramOfNext } from './next-link'
export {
  backoffDelay,
  finalCloseCodes,
  ReconnectingSocket,
  type Backoff,
  type ReconnectingSocketOptions,
  type SocketEnd,
  type SocketState,
} from './reconnecting-socket'
export { canCancel, canRetry, isTerminal, taskStatuses, type TaskStatus } from './task-status'

export function createClient(baseUrl: string, token?: string) {
  return hc<AppType>(baseUrl.replace(/\/$/, ''), token ? { headers: { Authorization: `Bearer ${token}` } } : undefined)
}

export type TaskClient = ReturnType<typeof createClient>

/**
 * A task's changes with seq > afterSeq, oldest first, read a page (of up to
 * `limit`, 1000 at most) at a time by following `next`, so a long history
 * is never one answer, nor held whole here. A failed read throws an ApiError.
 */
export async function* taskEvents(api: TaskClient, id: number, o: { afterSeq?: number; limit?: number } = {}) {
  const limit = String(o.limit ?? 1000)
  const readPage = async (after: number) => {
    const res = await api.api.tasks[':id'].events.$get({ param: { id: String(id) }, query: { after_seq: String(after), limit } })
    if (!res.ok) throw ApiError.fromBody(res.status, await res.json().catch(() => null), { message: `GET /api/tasks/${id}/events/ answered ${res.status}` })
    return res.json()
  }
  for await (const page of eventPages(o.afterSeq ?? 0, readPage)) yield* page.results
}
