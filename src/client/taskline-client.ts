import { ApiError } from './api-error'
import { eventPages } from './event-pages'
import { type FeedFollower, type FeedOptions, followFeed } from './follow-feed'
import { type FollowOptions, followTask, type TaskFollower } from './follow-task'
import { paramOfNext } from './next-link'
import type { WebSocketConstructor } from './reconnecting-socket'
import type {
  CreateScheduleInput,
  CreateTaskInput,
  DeleteFinishedTasksQuery,
  Health,
  ListTaskEventsQuery,
  ListTasksQuery,
  Readiness,
  Queue,
  Schedule,
  Stats,
  Worker,
  Task,
  TaskEvent,
  TaskEventPage,
  TaskPage,
  TaskTypeList,
  UpdateTaskInput,
} from './types'

/** The part of fetch the client uses; the global fetch fits, and so does a wrapper that adds retries or tracing. */
export type FetchFunction = (url: string, init: RequestInit) => Promise<Response>

export interface ClientOptions {
  /** Where the API is, e.g. http://127.0.0.1:8000; a path prefix (a proxy's) is kept. */
  baseUrl: string
  /** An API token (`taskline token create`); not needed with AUTH=off. */
  token?: string
  /** Default: the global fetch. */
  fetch?: FetchFunction
  /** For followTask and followFeed; default: the global WebSocket (Node 20 needs --experimental-websocket, or pass one). */
  WebSocket?: WebSocketConstructor
  /** Sent with every request (a tracing header, say). */
  headers?: Record<string, string>
}

export interface RequestOptions {
  signal?: AbortSignal
}

interface Call extends RequestOptions {
  query?: Record<string, string | number | undefined>
  body?: unknown
  headers?: Record<string, string>
}

/** The socket options the client fills in itself: where, who, and with which WebSocket. */
type Filled = 'token' | 'WebSocket'

/**
 * A typed client for every HTTP route of the Taskline API, and the two
 * WebSocket followers. It uses only fetch, URL and WebSocket, so it runs
 * in Bun, Node 20+ and browsers. A request the API refuses throws an
 * ApiError with the API's error code, message and field details.
 *
 *   const taskline = new TasklineClient({ baseUrl: 'http://127.0.0.1:8000', token })
 *   const task = await taskline.createTask({ title: 'hello' })
 */
export class TasklineClient {
  readonly baseUrl: string
  readonly #token: string | undefined
  readonly #fetch: FetchFunction
  readonly #WebSocket: WebSocketConstructor | undefined
  readonly #headers: Record<string, string>

  constructor(o: ClientOptions) {
    this.baseUrl = o.baseUrl.replace(/\/+$/, '')
    this.#token = o.token
    // Called through a closure: a browser's fetch throws when called as a method of another object.
    this.#fetch = o.fetch ?? ((url, init) => fetch(url, init))
    this.#WebSocket = o.WebSocket
    this.#headers = { ...o.headers }
  }

  /** 201 creates it; with an idempotencyKey already used for the same body, the task that key created comes back instead. */
  createTask(input: CreateTaskInput, o: RequestOptions & { idempotencyKey?: string } = {}): Promise<Task> {
    const headers: Record<string, string> = o.idempotencyKey === undefined ? {} : { 'idempotency-key': o.idempotencyKey }
    return this.#json('POST', '/api/tasks/', { ...o, body: input, headers })
  }

  /** Up to 1,000 tasks in one transaction, all or none; an idempotencyKey covers the batch. Answered in the order sent. */
  async createTasks(inputs: CreateTaskInput[], o: RequestOptions & { idempotencyKey?: string } = {}): Promise<Task[]> {
    const headers: Record<string, string> = o.idempotencyKey === undefined ? {} : { 'idempotency-key': o.idempotencyKey }
    return (await this.#json<{ results: Task[] }>('POST', '/api/tasks/bulk/', { ...o, body: { tasks: inputs }, headers })).results
  }

  /** One page, newest first; a non-admin token sees its own tasks only. */
  listTasks(query: ListTasksQuery = {}, o: RequestOptions = {}): Promise<TaskPage> {
    return this.#json('GET', '/api/tasks/', { ...o, query: { ...query } })
  }

  /** Every task matching the query, newest first, a page (of `limit`) at a time, following `next`. */
  async *listAllTasks(query: ListTasksQuery = {}, o: RequestOptions = {}): AsyncGenerator<Task> {
    for (let cursor: number | undefined = query.cursor; ; ) {
      const page = await this.listTasks({ ...query, cursor }, o)
      yield* page.results
      const next = paramOfNext(page.next, 'cursor')
      if (next === null) return
      cursor = Number(next)
    }
  }

  getTask(id: number, o: RequestOptions = {}): Promise<Task> {
    return this.#json('GET', taskPath(id), o)
  }

  /** Changes the title (PATCH). */
  updateTask(id: number, input: UpdateTaskInput, o: RequestOptions = {}): Promise<Task> {
    return this.#json('PATCH', taskPath(id), { ...o, body: input })
  }

  /** A running task is cancelled first; followers get a last message with `deleted: true`. */
  async deleteTask(id: number, o: RequestOptions = {}): Promise<void> {
    await this.#send('DELETE', taskPath(id), o)
  }

  /** Deletes finished tasks of one status finished before a time (only your own unless admin); answers how many. */
  deleteFinishedTasks(query: DeleteFinishedTasksQuery, o: RequestOptions = {}): Promise<{ deleted: number }> {
    return this.#json('DELETE', '/api/tasks/', { ...o, query: { ...query } })
  }

  /** PENDING or PROCESSING -> CANCELLED; an ApiError with code "conflict" (409) otherwise. */
  cancelTask(id: number, o: RequestOptions = {}): Promise<Task> {
    return this.#json('POST', `${taskPath(id)}cancel/`, o)
  }

  /** FAILED or CANCELLED -> PENDING with fresh attempts; an ApiError with code "conflict" (409) otherwise. */
  retryTask(id: number, o: RequestOptions = {}): Promise<Task> {
    return this.#json('POST', `${taskPath(id)}retry/`, o)
  }

  /** One page of a task's changes with seq > afterSeq, oldest first. */
  listTaskEvents(id: number, query: ListTaskEventsQuery = {}, o: RequestOptions = {}): Promise<TaskEventPage> {
    return this.#json('GET', `${taskPath(id)}events/`, { ...o, query: { after_seq: query.afterSeq, limit: query.limit } })
  }

  /**
   * A task's changes with seq > afterSeq, oldest first, read a page (of up to
   * `limit`, 1000 at most) at a time by following `next`, so a long history
   * is never one answer, nor held whole here.
   */
  async *taskEvents(id: number, query: ListTaskEventsQuery = {}, o: RequestOptions = {}): AsyncGenerator<TaskEvent> {
    const limit = query.limit ?? 1000
    for await (const page of eventPages(query.afterSeq ?? 0, (afterSeq) => this.listTaskEvents(id, { afterSeq, limit }, o))) yield* page.results
  }

  /** The types a task may name, with their payload schemas and the workers that run them. */
  listTaskTypes(o: RequestOptions = {}): Promise<TaskTypeList> {
    return this.#json('GET', '/api/task-types/', o)
  }

  /** Forgets a registered type no live worker handles (admin); its stored tasks stay. */
  async deleteTaskType(name: string, o: RequestOptions = {}): Promise<void> {
    await this.#send('DELETE', `/api/task-types/${encodeURIComponent(name)}/`, o)
  }

  /** A task from `input.task` at every tick of `input.cron`; the payload is checked now, as createTask would check it. */
  createSchedule(input: CreateScheduleInput, o: RequestOptions = {}): Promise<Schedule> {
    return this.#json('POST', '/api/schedules/', { ...o, body: input })
  }

  /** Every schedule by name, each with its next run; a non-admin token sees its own only. */
  async listSchedules(o: RequestOptions = {}): Promise<Schedule[]> {
    return (await this.#json<{ results: Schedule[] }>('GET', '/api/schedules/', o)).results
  }

  getSchedule(id: number, o: RequestOptions = {}): Promise<Schedule> {
    return this.#json('GET', schedulePath(id), o)
  }

  /** No ticks until resumed. */
  pauseSchedule(id: number, o: RequestOptions = {}): Promise<Schedule> {
    return this.#json('POST', `${schedulePath(id)}pause/`, o)
  }

  /** Ticks again from now on; those missed while paused are skipped. */
  resumeSchedule(id: number, o: RequestOptions = {}): Promise<Schedule> {
    return this.#json('POST', `${schedulePath(id)}resume/`, o)
  }

  /** The tasks it created stay. */
  async deleteSchedule(id: number, o: RequestOptions = {}): Promise<void> {
    await this.#send('DELETE', schedulePath(id), o)
  }

  /** Queues with active tasks or paused, with their counts (your own tasks, unless your token is an admin's). */
  async listQueues(o: RequestOptions = {}): Promise<Queue[]> {
    return (await this.#json<{ results: Queue[] }>('GET', '/api/queues/', o)).results
  }

  /** No worker starts the queue's tasks until it is resumed; running ones finish. Admin only. */
  pauseQueue(name: string, o: RequestOptions = {}): Promise<Queue> {
    return this.#json('POST', `/api/queues/${encodeURIComponent(name)}/pause/`, o)
  }

  /** Admin only. */
  resumeQueue(name: string, o: RequestOptions = {}): Promise<Queue> {
    return this.#json('POST', `/api/queues/${encodeURIComponent(name)}/resume/`, o)
  }

  /** Every FAILED task of yours (of a queue or type) back to PENDING with fresh attempts; how many. */
  async retryFailedTasks(filter: { queue?: string; type?: string } = {}, o: RequestOptions = {}): Promise<number> {
    return (await this.#json<{ retried: number }>('POST', '/api/tasks/retry-failed/', { ...o, body: filter })).retried
  }

  /** Every PENDING task of yours in the queue CANCELLED; how many. */
  async cancelPendingTasks(filter: { queue: string; type?: string }, o: RequestOptions = {}): Promise<number> {
    return (await this.#json<{ cancelled: number }>('POST', '/api/tasks/cancel-pending/', { ...o, body: filter })).cancelled
  }

  /** Counts by status, queue and type, outcomes per minute for the last hour, run times per type. */
  stats(o: RequestOptions = {}): Promise<Stats> {
    return this.#json('GET', '/api/stats/', o)
  }

  /** Live workers and those gone in the last hour. Admin only. */
  async listWorkers(o: RequestOptions = {}): Promise<Worker[]> {
    return (await this.#json<{ results: Worker[] }>('GET', '/api/workers/', o)).results
  }

  /** Liveness: the process is up. Needs no token. */
  health(o: RequestOptions = {}): Promise<Health> {
    return this.#json('GET', '/healthz', o)
  }

  /** Readiness: Postgres and Redis answer. Otherwise an ApiError 503 whose details name each that does not. Needs no token. */
  ready(o: RequestOptions = {}): Promise<Readiness> {
    return this.#json('GET', '/readyz', o)
  }

  /** This API instance's metrics, in Prometheus text format. */
  async metrics(o: RequestOptions = {}): Promise<string> {
    return (await this.#send('GET', '/metrics', o)).text
  }

  /** The OpenAPI 3.1 document of every route. */
  openApi(o: RequestOptions = {}): Promise<Record<string, unknown>> {
    return this.#json('GET', '/openapi.json', o)
  }

  /**
   * followTask on this client's API, with its token and WebSocket. An upgrade
   * refused because the task is not there (or not this token's) or the token
   * is refused stops the follower (state "paused", onClose not reconnecting)
   * instead of retrying: a browser's WebSocket cannot tell, so it asks over HTTP.
   */
  followTask(id: number, o: Omit<FollowOptions, Filled> & Partial<Pick<FollowOptions, Filled>>): TaskFollower {
    const refusedForGood = () => this.#refusedForGood(this.getTask(id))
    return followTask(this.baseUrl, id, { token: this.#token, WebSocket: this.#WebSocket, refusedForGood, ...o })
  }

  /** followFeed on this client's API, with its token and WebSocket; a refused token stops it as in followTask. */
  followFeed(o: Omit<FeedOptions, Filled> & Partial<Pick<FeedOptions, Filled>>): FeedFollower {
    const refusedForGood = () => this.#refusedForGood(this.listTasks({ limit: 1 }))
    return followFeed(this.baseUrl, { token: this.#token, WebSocket: this.#WebSocket, refusedForGood, ...o })
  }

  /** Whether a request shows that retrying a socket cannot help: 401 or 404. Anything else (the API down, say) is worth a retry. */
  #refusedForGood(probe: Promise<unknown>): Promise<boolean> {
    return probe.then(
      () => false,
      (e: unknown) => e instanceof ApiError && (e.status === 401 || e.status === 404),
    )
  }

  async #json<T>(method: string, path: string, call: Call): Promise<T> {
    const { status, text } = await this.#send(method, path, call)
    try {
      return JSON.parse(text) as T
    } catch {
      throw new ApiError(status, 'invalid_response', `${method} ${path} answered ${status} with a body that is not JSON`)
    }
  }

  async #send(method: string, path: string, call: Call): Promise<{ status: number; text: string }> {
    const headers: Record<string, string> = { accept: 'application/json', ...this.#headers, ...call.headers }
    if (this.#token) headers.authorization = `Bearer ${this.#token}`
    if (call.body !== undefined) headers['content-type'] = 'application/json'
    const body = call.body === undefined ? undefined : JSON.stringify(call.body)
    const res = await this.#fetch(`${this.baseUrl}${path}${queryString(call.query)}`, { method, headers, body, signal: call.signal })
    const text = await res.text()
    if (!res.ok) throw ApiError.fromBody(res.status, parseJson(text), { message: `${method} ${path} answered ${res.status} ${res.statusText}`.trim() })
    return { status: res.status, text }
  }
}

/** The shorter way to a client: createClient(baseUrl, token). */
export function createClient(baseUrl: string, token?: string): TasklineClient {
  return new TasklineClient({ baseUrl, token })
}

const taskPath = (id: number) => `/api/tasks/${encodeURIComponent(id)}/`
const schedulePath = (id: number) => `/api/schedules/${encodeURIComponent(id)}/`

function queryString(query: Call['query']): string {
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(query ?? {})) if (value !== undefined) params.set(name, String(value))
  const s = params.toString()
  return s ? `?${s}` : ''
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : null
  } catch {
    // A proxy's HTML error page, say: ApiError.fromBody keeps the status and says so.
    return null
  }
}
