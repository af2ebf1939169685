/** `taskline schedules ...`: list, create, pause, resume and delete cron schedules. */
import { z } from 'zod'
import { check, idArg, maxAttemptsArg, payloadArg, placement, UsageError } from './args'
import type { Client } from './client'
import { formatTime, renderTable, truncate } from './format'
import type { CliIO } from './io'

/** What the CLI needs of a schedule; loose, as for tasks, so a newer server's fields pass. */
export const scheduleSchema = z.looseObject({
  id: z.number(),
  name: z.string(),
  cron: z.string(),
  timezone: z.string(),
  paused: z.boolean(),
  next_run_at: z.string().nullable(),
  last_run_at: z.string().nullable(),
  task: z.looseObject({ title: z.string(), type: z.string() }),
})
export type Schedule = z.infer<typeof scheduleSchema>
export const scheduleListSchema = z.object({ results: z.array(scheduleSchema) })

/** One row per schedule; NEXT RUN in the local zone (or timeZone), "paused" while it is. */
export function renderScheduleTable(schedules: Schedule[], timeZone?: string): string {
  if (schedules.length === 0) return 'no schedules'
  return renderTable(
    ['ID', 'NAME', 'CRON', 'ZONE', 'NEXT RUN', 'LAST RUN', 'TASK'],
    schedules.map((s) => [
      String(s.id),
      truncate(s.name, 30),
      s.cron,
      s.timezone,
      s.paused ? 'paused' : formatTime(s.next_run_at, timeZone),
      formatTime(s.last_run_at, timeZone),
      truncate(`${s.task.type}: ${s.task.title.replace(/\s+/g, ' ')}`, 40),
    ]),
    ['right'],
  )
}

export const scheduleActions = ['list', 'create', 'pause', 'resume', 'delete'] as const

interface Values {
  json?: boolean
  timezone?: string
  type?: string
  payload?: string
  'max-attempts'?: string
  queue?: string
  priority?: string
}

/** Runs one `schedules` action; the positionals are what follows the word `schedules`. */
export async function runSchedules(positionals: string[], values: Values, io: CliIO, client: Client, printJson: (v: unknown) => void): Promise<void> {
  const [action = 'list', ...rest] = positionals
  const arity: Record<string, number> = { list: 0, create: 3, pause: 1, resume: 1, delete: 1 }
  if (!Object.hasOwn(arity, action)) throw new UsageError(`schedules: unknown action "${action}"; one of ${scheduleActions.join(', ')}`, 'schedules')
  if (rest.length !== arity[action]) throw new UsageError(`schedules ${action} takes ${arity[action]} argument(s), got ${rest.length}`, 'schedules')
  const show = (s: Schedule, verb: string) =>
    values.json ? printJson(s) : io.out(`schedule ${s.id} ${s.name} ${verb}; next run ${s.paused ? 'none (paused)' : formatTime(s.next_run_at)}\n`)
  switch (action) {
    case 'list': {
      const list = await client.listSchedules()
      if (values.json) printJson(list)
      else io.out(`${renderScheduleTable(list.results)}\n`)
      return
    }
    case 'create': {
      const [name, cron, title] = rest as [string, string, string]
      const task = {
        title,
        type: values.type,
        payload: values.payload === undefined ? undefined : check(payloadArg, values.payload, 'schedules'),
        max_attempts: values['max-attempts'] === undefined ? undefined : check(maxAttemptsArg, values['max-attempts'], 'schedules'),
        ...placement(values, 'schedules'),
      }
      return show(await client.createSchedule({ name, cron, timezone: values.timezone, task }), 'created')
    }
    case 'pause':
      return show(await client.pauseSchedule(check(idArg, rest[0], 'schedules')), 'paused')
    case 'resume':
      return show(await client.resumeSchedule(check(idArg, rest[0], 'schedules')), 'resumed')
    case 'delete': {
      const id = check(idArg, rest[0], 'schedules')
      await client.deleteSchedule(id)
      if (!values.json) io.out(`schedule ${id} deleted\n`)
      return
    }
  }
}
