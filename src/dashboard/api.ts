/// <reference lib="dom" />
import { ApiError } from '../client/api-error'
import { paramOfNext } from '../client/next-link'
import type { EventList, Queue, Schedule, Stats, Task, TaskPage, TaskStatus, TaskTypeList, Worker } from './types'

export { ApiError }
export type { ErrorDetail } from '../client/api-error'

const TOKEN_KEY = 'taskline.token'

/** The token lives in sessionStorage: it survives reloads but not the closing of the tab. */
export const token = {
  get: (): string => sessionStorage.getItem(TOKEN_KEY) ?? '',
  set(value: string) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value)
    else sessionStorage.removeItem(TOKEN_KEY)
  },
}

type Listener = (e: ApiError) => void
const unauthorizedListeners = new Set<Listener>()
/** Called on every 401, wherever it came from, so one place can ask for a token. */
export const onUnauthorized = (fn: Listener) => unauthorizedListeners.add(fn)

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  const t = token.get()
  if (t) headers.authorization = `Bearer ${t}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  let res: Response
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  } catch {
    throw new ApiError(0, 'network_error', 'could not reach the API; check the connection and try again')
  }
  const text = await res.text()
  let data: unknown = null
  try {
    data = text ? JSON.parse(text) : null
  } catch {
    // A proxy's HTML error page, say: report the status rather than a parse error.
  }
  if (res.ok) return data as T
  const e = ApiError.fromBody(res.status, data, { code: 'http_error', message: `request failed with HTTP ${res.status}` })
  if (res.status === 401) for (const fn of unauthorizedListeners) fn(e)
  throw e
}

export interface CreateTaskBody {
  title: string
  type?: string
  payload?: unknown
  max_attempts?: number
  queue?: string
  priority?: number
}

export const api = {
  listTasks(q: { status?: TaskStatus | ''; queue?: string; type?: string; q?: string; cursor?: string | null; limit?: number }): Promise<TaskPage> {
    const p = new URLSearchParams()
    if (q.status) p.set('status', q.status)
    if (q.queue) p.set('queue', q.queue)
    if (q.type) p.set('type', q.type)
    if (q.q?.trim()) p.set('q', q.q.trim())
    if (q.cursor) p.set('cursor', q.cursor)
    p.set('limit', String(q.limit ?? 25))
    return request('GET', `/api/tasks/?${p}`)
  },
  getTask: (id: number): Promise<Task> => request('GET', `/api/tasks/${id}/`),
  createTask: (body: CreateTaskBody): Promise<Task> => request('POST', '/api/tasks/', body),
  cancelTask: (id: number): Promise<Task> => request('POST', `/api/tasks/${id}/cancel/`),
  retryTask: (id: number): Promise<Task> => request('POST', `/api/tasks/${id}/retry/`),
  /** One page of a task's history: up to `limit` changes with seq > afterSeq. */
  taskEvents: (id: number, afterSeq: number, limit: number): Promise<EventList> =>
    request('GET', `/api/tasks/${id}/events/?after_seq=${afterSeq}&limit=${limit}`),
  /** Every type a task may have, with its payload schema and whether a live worker handles it. */
  listTaskTypes: (): Promise<TaskTypeList> => request('GET', '/api/task-types/'),
  /** Every schedule this token sees, by name, with its next run. */
  listSchedules: (): Promise<{ results: Schedule[] }> => request('GET', '/api/schedules/'),
  /** Queues with active tasks or paused, with their counts. */
  listQueues: (): Promise<{ results: Queue[] }> => request('GET', '/api/queues/'),
  pauseQueue: (name: string): Promise<Queue> => request('POST', `/api/queues/${encodeURIComponent(name)}/pause/`),
  resumeQueue: (name: string): Promise<Queue> => request('POST', `/api/queues/${encodeURIComponent(name)}/resume/`),
  retryFailed: (filter: { queue?: string }): Promise<{ retried: number }> => request('POST', '/api/tasks/retry-failed/', filter),
  cancelPending: (filter: { queue: string }): Promise<{ cancelled: number }> => request('POST', '/api/tasks/cancel-pending/', filter),
  stats: (): Promise<Stats> => request('GET', '/api/stats/'),
  removeFinished: (status: 'COMPLETED' | 'FAILED' | 'CANCELLED', before: Date): Promise<{ deleted: number }> =>
    request('DELETE', `/api/tasks/?status=${status}&finished_before=${encodeURIComponent(before.toISOString())}`),
  listWorkers: (): Promise<{ results: Worker[] }> => request('GET', '/api/workers/'),
  pauseSchedule: (id: number): Promise<Schedule> => request('POST', `/api/schedules/${id}/pause/`),
  resumeSchedule: (id: number): Promise<Schedule> => request('POST', `/api/schedules/${id}/resume/`),
  /** Whether the API refuses this tab's token: the cheapest request that needs one. */
  async isUnauthorized(): Promise<boolean> {
    try {
      await request('GET', '/api/tasks/?limit=1')
      return false
    } catch (err) {
      return err instanceof ApiError && err.status === 401
    }
  },
}

export const cursorFromNext = (next: string | null) => paramOfNext(next, 'cursor')
