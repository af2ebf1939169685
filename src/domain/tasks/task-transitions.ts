import { sql, type RawBuilder, type UpdateObject } from 'kysely'
import type { DB, Json, TaskStatus } from '../../infra/database'
import { cancellableStatuses, retryableStatuses, taskStatuses } from './task-status'

/** What taskline_tasks_total{event} counts a change as; a transition without one is not counted. */
export type MetricLabel = 'created' | 'completed' | 'failed' | 'retried' | 'cancelled'

/**
 * One way a task's row may change. Every change also bumps seq and
 * updated_at and writes its task_events row; the repositories apply these
 * (applyTransition), so no caller writes an UPDATE of its own.
 */
export interface Transition<P = void> {
  /** The statuses it leaves from: a task in any other is left as it is. */
  from: readonly TaskStatus[]
  /** The status it moves to; null keeps the status. */
  to: TaskStatus | null
  /** A condition of its own on the row beyond the status (due, lease expired, attempts left). */
  when?: RawBuilder<boolean>
  /** The columns it sets besides status; SQL values may name the row's columns. */
  set(p: P): UpdateObject<DB, 'tasks'>
  /** Its event's detail; SQL may name the changed row's columns. */
  detail(p: P): Json | RawBuilder<Json> | null
  metric: MetricLabel | null
}

/** A failed attempt, as the worker reports it. */
export interface AttemptFailure {
  error: string
  attempt: number
  retryInMs: number
  /** Where the handler threw, kept in the event for the operator (not on the row). */
  stack?: string
}

/** A failure's event detail: its error and attempt, the stack when there is one. */
const failureDetail = (p: AttemptFailure) => ({ error: p.error, attempt: p.attempt, ...(p.stack ? { stack: p.stack } : {}) })

const now = sql<Date>`now()`
/** Now plus ms: a lease's end, or when a retry is due. */
export const nowPlusMs = (ms: number) => sql<Date>`now() + make_interval(secs => ${ms / 1000})`
const released = { locked_by: null, locked_until: null } as const
const leaseLost = 'worker lost: its lease expired before the attempt finished'
/** The first of a task's dependencies that will never complete, as the error its dependent fails with. */
const brokenDependency = sql<string>`select 'dependency ' || d || case when p.id is null then ' no longer exists' else ' ended ' || p.status end
  from unnest(tasks.depends_on) d left join tasks p on p.id = d
 where p.id is null or p.status in ('FAILED', 'CANCELLED') order by d limit 1`

export const transitions = {
  /**
   * Applied by the INSERT itself, with runAfter the SQL of its first run time
   * (null: now) and dependsOn its dependencies (null: none). A task due now
   * with nothing to wait for is ready at once; the sweeper makes the others
   * ready when their time comes and their dependencies are COMPLETED.
   */
  create: {
    from: [],
    to: 'PENDING',
    set: (p: { runAfter: RawBuilder<Date | null>; dependsOn: RawBuilder<number[] | null> }) => ({
      run_after: sql<Date>`coalesce(${p.runAfter}, now())`,
      enqueued_at: sql<Date | null>`case when ${p.runAfter} is null and ${p.dependsOn} is null then now() end`,
    }),
    detail: () => null,
    metric: 'created',
  },
  claim: {
    from: ['PENDING'],
    to: 'PROCESSING',
    when: sql<boolean>`run_after <= now()`,
    set: (p: { workerId: string; leaseMs: number }) => ({
      attempts: sql`attempts + 1`,
      progress: 0,
      locked_by: p.workerId,
      locked_until: nowPlusMs(p.leaseMs),
      // The clock, not the transaction's start: a claim may wait for its queue's lock first.
      started_at: sql`coalesce(started_at, clock_timestamp())`,
    }),
    // The worker too: the operator sees which one ran each attempt.
    detail: () => sql<Json>`jsonb_build_object('attempt', attempts, 'worker', locked_by)`,
    metric: null,
  },
  reportProgress: {
    from: ['PROCESSING'],
    to: null,
    set: (p: { progress: number; message?: string }) => ({ progress: p.progress }),
    detail: (p: { progress: number; message?: string }) => (p.message === undefined ? null : { message: p.message }),
    metric: null,
  },
  complete: {
    from: ['PROCESSING'],
    to: 'COMPLETED',
    set: (p: { result: RawBuilder<Json> }) => ({ progress: 1, result: p.result, error: null, ...released, finished_at: now }),
    detail: () => sql<Json>`jsonb_build_object('result', result)`,
    metric: 'completed',
  },
  failAndRetry: {
    from: ['PROCESSING'],
    to: 'PENDING',
    set: (p: AttemptFailure) => ({ error: p.error, ...released, enqueued_at: null, run_after: nowPlusMs(p.retryInMs) }),
    detail: (p: AttemptFailure) => ({ ...failureDetail(p), retry_in_ms: p.retryInMs }),
    metric: 'retried',
  },
  /** The last attempt failed. */
  fail: {
    from: ['PROCESSING'],
    to: 'FAILED',
    set: (p: AttemptFailure) => ({ error: p.error, ...released, enqueued_at: null, finished_at: now }),
    detail: failureDetail,
    metric: 'failed',
  },
  /** A worker shutting down gives its task back without counting the attempt: a re-queue, not a retry. */
  handBack: {
    from: ['PROCESSING'],
    to: 'PENDING',
    set: () => ({ attempts: sql`attempts - 1`, progress: 0, ...released, enqueued_at: now, run_after: now }),
    detail: () => ({ reason: 'worker shut down before the task finished; it will run again' }),
    metric: null,
  },
  /** Its worker died (the lease expired) with attempts left: the attempt counts as failed. */
  recover: {
    from: ['PROCESSING'],
    to: 'PENDING',
    when: sql<boolean>`locked_until < now() and attempts < max_attempts`,
    set: () => ({ error: leaseLost, ...released, enqueued_at: now, run_after: now }),
    detail: () => ({ error: leaseLost }),
    metric: 'retried',
  },
  /** Its worker died on the last attempt. */
  leaseLost: {
    from: ['PROCESSING'],
    to: 'FAILED',
    when: sql<boolean>`locked_until < now() and attempts >= max_attempts`,
    set: () => ({ error: leaseLost, ...released, finished_at: now }),
    detail: () => ({ error: leaseLost }),
    metric: 'failed',
  },
  /** A running handler learns of it from the cancels channel and aborts. */
  cancel: {
    from: cancellableStatuses,
    to: 'CANCELLED',
    set: () => ({ finished_at: now, ...released }),
    detail: () => ({ reason: 'cancelled by request' }),
    metric: 'cancelled',
  },
  /** A fresh attempt budget, queued again. */
  retryByRequest: {
    from: retryableStatuses,
    to: 'PENDING',
    set: () => ({
      attempts: 0,
      progress: 0,
      result: null,
      error: null,
      run_after: now,
      // Its dependencies are checked again before it runs: one may have failed meanwhile.
      enqueued_at: sql<Date | null>`case when depends_on is null then now() end`,
      started_at: null,
      finished_at: null,
    }),
    detail: () => ({ reason: 'retried by request' }),
    metric: 'retried',
  },
  /** A waiting task one of whose dependencies will never complete. */
  dependencyFailed: {
    from: ['PENDING'],
    to: 'FAILED',
    // Only before its first run: once it ran, its dependencies had completed (retention may delete them since).
    when: sql<boolean>`attempts = 0 and exists (${brokenDependency})`,
    set: () => ({ error: sql<string>`(${brokenDependency})`, ...released, enqueued_at: null, finished_at: now }),
    detail: () => sql<Json>`jsonb_build_object('error', error)`,
    metric: 'failed',
  },
  rename: {
    from: taskStatuses,
    to: null,
    set: (p: { title: string }) => ({ title: p.title }),
    detail: (p: { title: string }) => ({ title: p.title }),
    metric: null,
  },
} as const satisfies Record<string, Transition<never>>

export type TransitionName = keyof typeof transitions

/** A transition's columns with its status, as literals: the from and to lists are constants, which lets Postgres match partial indexes. */
export function columnsOf<P>(t: Transition<P>, p: P): UpdateObject<DB, 'tasks'> {
  return t.to === null ? t.set(p) : { ...t.set(p), status: sql.lit(t.to) }
}

/** The condition every application of t carries: a status it leaves from, and its own. */
export function guardOf(t: Transition<never>): RawBuilder<boolean> {
  const leaves = sql<boolean>`status in (${sql.join(t.from.map((s) => sql.lit(s)))})`
  return t.when ? sql<boolean>`${leaves} and ${t.when}` : leaves
}
