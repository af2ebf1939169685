import { z } from 'zod'
import { taskStatuses } from '../tasks/task-status'

const byStatus = z.object(Object.fromEntries(taskStatuses.map((s) => [s, z.number().int().min(0)])) as Record<(typeof taskStatuses)[number], z.ZodNumber>)
export type StatusCounts = z.output<typeof byStatus>

/** GET /api/stats/ as the API answers it. */
export const statsSchema = z
  .object({
    by_status: byStatus.meta({ description: 'tasks in each status' }),
    by_queue: z.record(z.string(), byStatus).meta({ description: 'the same, per queue' }),
    by_type: z.record(z.string(), byStatus).meta({ description: 'the same, per task type' }),
    throughput: z
      .array(z.object({ minute: z.iso.datetime({ offset: true }), completed: z.number().int().min(0), failed: z.number().int().min(0) }))
      .meta({ description: 'tasks that ended COMPLETED or FAILED in each of the last 60 minutes, oldest first' }),
    run_time: z
      .array(z.object({ type: z.string(), count: z.number().int().min(0), p50_ms: z.number(), p95_ms: z.number() }))
      .meta({ description: 'from start to completion, per type, over the last hour (the latest 5,000 completions at most)' }),
  })
  .meta({ id: 'Stats' })
export type Stats = z.output<typeof statsSchema>

export const zeroCounts = (): StatusCounts => Object.fromEntries(taskStatuses.map((s) => [s, 0])) as StatusCounts
