/**
 * What the API sends and accepts, as plain interfaces. The server describes
 * the same shapes with zod over its database types; declaring them again
 * here keeps `taskline/client` free of zod, kysely and every server module,
 * and types.test.ts makes the compiler hold the two copies equal.
 */

export type TaskStatus = 'PENDING' | 'PROCESSING' | 'COMPLETED' | 'FAILED' | 'CANCELLED'

/** A task as GET /api/tasks/:id/ answers it. Timestamps are ISO 8601 strings. */
export interface Task {
  id: number
  title: string
  /** The handler's name. */
  type: string
  /** The handler's input. */
  payload: Record<string, unknown>
  status: TaskStatus
  /** Attempts started so far. */
  attempts: number
  max_attempts: number
  /** Limit on one attempt; null: the handler's default. */
  timeout_ms: number | null
  /** 0 to 1. */
  progress: number
  /** The handler's return value once COMPLETED, else null. */
  result: unknown
  /** Why the last attempt failed. */
  error: string | null
  /** Bumped by one on every change; the seq WebSocket messages carry. */
  seq: number
  /** The queue it waits in. */
  queue: string
  /** -10..10: among one owner's ready tasks of a queue, higher runs first. */
  priority: number
  /** Tasks that must be COMPLETED before it runs. */
  depends_on: number[]
  /** While PENDING: when it may run next (retries back off). */
  run_after: string | null
  created_at: string
  updated_at: string
  started_at: string | null
  finished_at: string | null
}

export interface CreateTaskInput {
  title: string
  /** Default "demo". */
  type?: string
  payload?: Record<string, unknown>
  /** 1..100, default 3. */
  max_attempts?: number
  timeout_ms?: number
  /** Not before this ISO time (a past one runs now). Give this or delay_ms. */
  run_at?: string
  /** Not before this many ms from now. */
  delay_ms?: number
  /** Default "default". */
  queue?: string
  /** -10..10, default 0. */
  priority?: number
  /** Ids of your tasks that must be COMPLETED first; if one FAILs or is CANCELLED, this task FAILs. */
  depends_on?: number[]
}

export interface UpdateTaskInput {
  title: string
}

export interface ListTasksQuery {
  status?: TaskStatus
  /** Only tasks of this queue. */
  queue?: string
  /** 1..100, default 20. */
  limit?: number
  /** From the previous page's `next`; listAllTasks follows it for you. */
  cursor?: number
}

/** Which finished tasks DELETE /api/tasks/ removes. */
export interface DeleteFinishedTasksQuery {
  status: 'COMPLETED' | 'FAILED' | 'CANCELLED'
  /** Only tasks that finished before this ISO 8601 time with a zone (`date.toISOString()`). */
  finished_before: string
}

/** What a schedule creates at each tick: the fields of CreateTaskInput a template may hold. */
export interface TaskTemplate {
  title: string
  /** Default "demo". */
  type?: string
  payload?: Record<string, unknown>
  /** 1..100, default 3. */
  max_attempts?: number
  timeout_ms?: number
  /** Default "default". */
  queue?: string
  /** -10..10, default 0. */
  priority?: number
}

/** The body of POST /api/schedules/. */
export interface CreateScheduleInput {
  /** Unique per owner. */
  name: string
  /** Five fields, or six with seconds first (croner syntax). */
  cron: string
  /** An IANA zone name; default UTC. */
  timezone?: string
  task: TaskTemplate
}

/** A schedule as the API answers it. */
export interface Schedule {
  id: number
  name: string
  cron: string
  timezone: string
  /** The template with its defaults filled in. */
  task: {
    title: string
    type: string
    payload: Record<string, unknown>
    max_attempts: number
    timeout_ms?: number | undefined
    queue: string
    priority: number
  }
  paused: boolean
  /** The next tick; null while paused. */
  next_run_at: string | null
  /** The tick of the last task it created. */
  last_run_at: string | null
  created_at: string
  updated_at: string
}

/** One page of tasks, newest first; `next` is null on the last page. */
export interface TaskPage {
  results: Task[]
  next: string | null
}

/** A queue as GET /api/queues/ answers it. */
export interface Queue {
  name: string
  /** A paused queue starts no task until resumed. */
  paused: boolean
  /** PENDING and ready to run. */
  ready: number
  /** PENDING but not yet due, or waiting on dependencies. */
  waiting: number
  /** PROCESSING. */
  running: number
}

/** Tasks in each status. */
export type StatusCounts = Record<TaskStatus, number>

/** GET /api/stats/: your tasks (everyone's for an admin). */
export interface Stats {
  by_status: StatusCounts
  by_queue: Record<string, StatusCounts>
  by_type: Record<string, StatusCounts>
  /** Tasks that ended COMPLETED or FAILED in each of the last 60 minutes, oldest first. */
  throughput: { minute: string; completed: number; failed: number }[]
  /** Start to completion per type over the last hour (the latest 5,000 completions at most). */
  run_time: { type: string; count: number; p50_ms: number; p95_ms: number }[]
}

/** A worker as GET /api/workers/ answers it (admin). */
export interface Worker {
  id: string
  host: string
  pid: number
  version: string
  /** dead: no heartbeat for three intervals without a clean stop. */
  state: 'alive' | 'stopped' | 'dead'
  /** The queues it serves; null: every queue. */
  queues: string[] | null
  types: string[]
  concurrency: number
  /** Tasks running at its last heartbeat. */
  running: number
  started_at: string
  last_seen: string
  stopped_at: string | null
}

/** One change of a task: a page of its history holds these, and so do both WebSockets. */
export interface TaskEvent {
  kind: 'change'
  task_id: number
  /** The API token that owns the task; null with AUTH=off. */
  owner_id: number | null
  seq: number
  status: TaskStatus
  progress: number
  at: string
  /** Where the all-tasks feed resumes (?after=). */
  cursor: number
  /** What changed besides status and progress (attempt, result, error, retry time, title), or null. */
  detail: unknown
  /** Only on the last message for a deleted task. */
  deleted?: true
}

export interface ListTaskEventsQuery {
  /** Only changes with a greater seq (default 0: from the start). */
  afterSeq?: number
  /** 1..1000, default 100. */
  limit?: number
}

/** One page of a task's history, oldest first; `next` is null on the last page. */
export interface TaskEventPage {
  task_id: number
  results: TaskEvent[]
  next: string | null
}

/** A task type the API accepts, from GET /api/task-types/. */
export interface TaskTypeInfo {
  name: string
  /** Shipped with Taskline, known without any worker; the rest were registered by the workers that run them. */
  builtin: boolean
  /** JSON Schema (draft 2020-12) of the payload. */
  payload_schema: Record<string, unknown>
  /** The type's default limit on one attempt; null: the worker's TASK_TIMEOUT_MS. */
  timeout_ms: number | null
  /** The live workers that handle it. */
  workers: { worker_id: string; last_seen_at: string }[]
  /** Whether a live worker handles it; tasks of a type nobody handles wait until one does. */
  handled: boolean
}

export interface TaskTypeList {
  results: TaskTypeInfo[]
}

export interface Health {
  status: 'ok'
}

export interface Readiness {
  status: 'ready'
  database: 'ok'
  redis: 'ok'
  /** Task types no live worker handles: their tasks wait (see listTaskTypes). */
  unhandled_types: string[]
  /** Queues with ready tasks that no live worker serves. */
  unserved_queues: string[]
}

/** The first message of a task's socket opened without after_seq: the task as it stands. */
export interface TaskSnapshotMessage {
  kind: 'snapshot'
  task_id: number
  status: TaskStatus
  seq: number
  progress: number
  at: string
  task: Task
}

/** What a task's socket sends, besides pong. */
export type TaskMessage = TaskSnapshotMessage | TaskEvent

/** The all-tasks feed's first message when it starts without ?after=: where the feed stands. */
export interface FeedHello {
  kind: 'hello'
  cursor: number
}

/** What the all-tasks feed sends, besides pong. */
export type FeedMessage = FeedHello | TaskEvent
