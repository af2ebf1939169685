import { Cron } from 'croner'
import type { Selectable } from 'kysely'
import { z } from 'zod'
import type { Schedules } from '../../infra/database'
import { positiveIntString, requiredString, storable, taskFieldsSchema } from '../tasks/task'

export type ScheduleRow = Selectable<Schedules>

/** The parsed pattern, or undefined when croner refuses it (or the zone). Seconds are allowed: six fields. */
export function parseCron(cron: string, timezone: string): Cron | undefined {
  try {
    return new Cron(cron, { timezone, paused: true })
  } catch {
    return undefined
  }
}

/** A zone Intl knows by name (IANA), such as Europe/Paris or UTC. */
export function isTimezone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz })
    return true
  } catch {
    return false
  }
}

/**
 * The first tick strictly after `after`; null when the pattern has none left
 * (croner allows year-bounded patterns such as a date in the past).
 */
export function nextTick(cron: string, timezone: string, after: Date): Date | null {
  return parseCron(cron, timezone)?.nextRun(after) ?? null
}

/**
 * The catch-up rule. A due schedule whose next_run_at lies in the past makes
 * one task, for the latest tick that is not in the future, however many ticks
 * were missed while no worker ran; its next run is the first tick after now.
 */
export function dueTick(cron: string, timezone: string, nextRunAt: Date, now: Date): { tick: Date; next: Date | null } {
  const c = parseCron(cron, timezone)
  const next = c?.nextRun(now) ?? null
  // previousRuns looks back from now (exclusive), so a tick exactly at now counts as well.
  const latest = c?.previousRuns(1, new Date(now.getTime() + 1))[0]
  const tick = latest && latest.getTime() >= nextRunAt.getTime() ? latest : nextRunAt
  return { tick, next }
}

/** The task a schedule creates at each tick: the same fields, limits and defaults as POST /api/tasks/. */
export const taskTemplateSchema = taskFieldsSchema.pick({
  title: true,
  type: true,
  payload: true,
  max_attempts: true,
  timeout_ms: true,
  queue: true,
  priority: true,
})
export type TaskTemplate = z.infer<typeof taskTemplateSchema>

const name = storable('name', requiredString('name').trim().min(1, 'name must not be empty').max(100, 'name must be at most 100 characters'))

export const createScheduleSchema = z
  .strictObject({
    name,
    cron: requiredString('cron')
      .trim()
      .min(1, 'cron must not be empty')
      .max(200, 'cron must be at most 200 characters')
      .meta({ description: 'five fields, or six with seconds first (`*/10 * * * * *`); croner syntax, including L, W and #' }),
    timezone: z
      .string()
      .max(100)
      .refine(isTimezone, 'timezone must be an IANA zone name such as Europe/Paris or UTC')
      .default('UTC')
      .meta({ description: 'the zone the cron fields are read in; default UTC' }),
    task: taskTemplateSchema,
  })
  .superRefine((s, ctx) => {
    if (!isTimezone(s.timezone)) return
    if (!parseCron(s.cron, s.timezone)) ctx.addIssue({ code: 'custom', path: ['cron'], message: `cron "${s.cron}" is not a valid cron expression` })
    else if (!nextTick(s.cron, s.timezone, new Date())) ctx.addIssue({ code: 'custom', path: ['cron'], message: `cron "${s.cron}" never runs again` })
  })
export type CreateScheduleInput = z.infer<typeof createScheduleSchema>

export const scheduleIdSchema = positiveIntString('id')

const timestamp = z.iso.datetime({ offset: true })

/** The schedule as the API answers it; scheduleRowToSchedule is checked against it by the compiler. */
export const scheduleSchema = z
  .object({
    id: z.number().int().positive(),
    name: z.string(),
    cron: z.string(),
    timezone: z.string(),
    task: taskTemplateSchema,
    paused: z.boolean(),
    next_run_at: timestamp.nullable().meta({ description: 'the next tick; null while paused' }),
    last_run_at: timestamp.nullable().meta({ description: 'the tick of the last task it created' }),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .meta({ id: 'Schedule' })

export function scheduleRowToSchedule(row: ScheduleRow) {
  return {
    id: row.id,
    name: row.name,
    cron: row.cron,
    timezone: row.timezone,
    // Only templates that passed taskTemplateSchema are stored.
    task: row.task as TaskTemplate,
    paused: row.paused,
    next_run_at: row.paused ? null : row.next_run_at.toISOString(),
    last_run_at: row.last_run_at?.toISOString() ?? null,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  } satisfies z.output<typeof scheduleSchema>
}
export type Schedule = ReturnType<typeof scheduleRowToSchedule>
