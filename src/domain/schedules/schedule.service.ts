import type { Db } from '../../infra/db'
import { wallMs } from '../../infra/clock'
import { ConflictError, NotFoundError, ValidationError } from '../errors'
import { publishChanges, readyIds, type StreamDeps } from '../streams'
import type { TaskChange } from '../task-events/task-event'
import * as taskRepo from '../tasks/task.repository'
import { validatePayload, type TaskDeps } from '../tasks/task.service'
import type { Principal } from '../tokens/token'
import { dueTick, nextTick, scheduleRowToSchedule, type CreateScheduleInput, type Schedule, type ScheduleRow } from './schedule'
import * as repo from './schedule.repository'

export type ScheduleDeps = Pick<TaskDeps, 'db' | 'taskTypes' | 'limits'>

const scheduleNotFound = (id: number) => new NotFoundError(`schedule ${id} not found`)

/** Another owner's schedule answers exactly like a missing one, as tasks do. */
async function mustFind(db: Db, who: Principal, id: number): Promise<ScheduleRow> {
  const row = await repo.findScheduleById(db, id)
  if (!row || !(who.admin || row.owner_id === who.ownerId)) throw scheduleNotFound(id)
  return row
}

/** A task check's error, its paths moved under the schedule's `task` field. */
function underTask(e: ValidationError): ValidationError {
  return new ValidationError(
    `task.${e.message}`,
    e.details.map((d) => ({ ...d, path: d.path ? `task.${d.path}` : 'task' })),
  )
}

/** The template's payload is checked now, exactly as POST /api/tasks/ would check it, so no tick creates a task that could not be POSTed. */
export async function createSchedule(deps: ScheduleDeps, who: Principal, input: CreateScheduleInput): Promise<Schedule> {
  await validatePayload(deps as TaskDeps, input.task).catch((e: unknown) => Promise.reject(e instanceof ValidationError ? underTask(e) : e))
  // The schema checked that the pattern has a next tick.
  const next = nextTick(input.cron, input.timezone, new Date())!
  const row = await repo.insertSchedule(deps.db, {
    owner_id: who.ownerId,
    name: input.name,
    cron: input.cron,
    timezone: input.timezone,
    task: input.task,
    next_run_at: next,
  })
  if (!row) throw new ConflictError(`a schedule named "${input.name}" exists already`)
  return scheduleRowToSchedule(row)
}

export async function listSchedules(deps: ScheduleDeps, who: Principal): Promise<Schedule[]> {
  return (await repo.listSchedules(deps.db, who.admin ? undefined : who.ownerId)).map(scheduleRowToSchedule)
}

export async function getSchedule(deps: ScheduleDeps, who: Principal, id: number): Promise<Schedule> {
  return scheduleRowToSchedule(await mustFind(deps.db, who, id))
}

export async function pauseSchedule(deps: ScheduleDeps, who: Principal, id: number): Promise<Schedule> {
  await mustFind(deps.db, who, id)
  const row = await repo.setSchedulePaused(deps.db, id, true)
  if (!row) throw scheduleNotFound(id)
  return scheduleRowToSchedule(row)
}

/** Resumes from now: ticks that fell while it was paused are skipped, not caught up. */
export async function resumeSchedule(deps: ScheduleDeps, who: Principal, id: number): Promise<Schedule> {
  const found = await mustFind(deps.db, who, id)
  if (!found.paused) return scheduleRowToSchedule(found)
  const next = nextTick(found.cron, found.timezone, new Date())
  if (!next) throw new ConflictError(`schedule ${id}'s cron "${found.cron}" never runs again`)
  const row = await repo.setSchedulePaused(deps.db, id, false, next)
  if (!row) throw scheduleNotFound(id)
  return scheduleRowToSchedule(row)
}

/** Tasks it created stay. */
export async function deleteSchedule(deps: ScheduleDeps, who: Principal, id: number): Promise<void> {
  await mustFind(deps.db, who, id)
  if (!(await repo.deleteScheduleById(deps.db, id))) throw scheduleNotFound(id)
}

/**
 * The task a tick creates is keyed by its schedule and tick. Task keys POSTed
 * by clients are always `<owner>/<key>` or `anonymous/<key>`, so none can
 * take this one.
 */
export const tickKey = (scheduleId: number, tick: Date) => `schedule:${scheduleId}:${tick.toISOString()}`

/**
 * Fires one due schedule: the tick's task and the move of next_run_at are one
 * transaction. The guarded UPDATE claims the tick (a racing worker updates
 * nothing and creates nothing), and the task's idempotency key makes a tick's
 * task unique even if a claim were ever repeated. The new task is queued
 * after the commit, as a POST's is.
 * Returns the task's change, or undefined when another worker fired it.
 */
export async function fireSchedule(deps: StreamDeps & { db: Db }, row: ScheduleRow, now: Date): Promise<TaskChange | undefined> {
  const { tick, next } = dueTick(row.cron, row.timezone, row.next_run_at, now)
  const template = scheduleRowToSchedule(row).task
  const change = await deps.db.transaction().execute(async (trx) => {
    if (!(await repo.advanceSchedule(trx, row.id, row.next_run_at, tick, next))) return undefined
    const [change] = await taskRepo.insertTasks(trx, [
      {
        title: template.title,
        type: template.type,
        payload: template.payload,
        max_attempts: template.max_attempts,
        timeout_ms: template.timeout_ms,
        queue: template.queue,
        priority: template.priority,
        owner_id: row.owner_id,
        idempotency_key: tickKey(row.id, tick),
      },
    ])
    return change
  })
  if (!change) return undefined
  // Its event was written inside the transaction: stored only at the commit.
  change.stored_at = wallMs()
  await publishChanges(deps, readyIds([change]), [change])
  return change
}

/** Fires every schedule due at `now`, up to `limit`; how many tasks this call created. */
export async function fireDueSchedules(deps: StreamDeps & { db: Db }, now: Date, limit = 100): Promise<number> {
  let created = 0
  for (const row of await repo.findDueSchedules(deps.db, now, limit)) {
    if (await fireSchedule(deps, row, now)) created++
  }
  return created
}
