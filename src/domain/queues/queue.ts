import { z } from 'zod'
import { queueNameSchema } from '../tasks/task'

export const queueParamSchema = z.object({ name: queueNameSchema.meta({ description: 'queue name' }) })

/** A queue as GET /api/queues/ answers it: its tasks by state, counted from Postgres. */
export const queueSchema = z
  .object({
    name: z.string(),
    paused: z.boolean().meta({ description: 'a paused queue starts no task until resumed' }),
    ready: z.number().int().min(0).meta({ description: 'PENDING and ready to run' }),
    waiting: z.number().int().min(0).meta({ description: 'PENDING but not yet due (delayed, backing off) or waiting on dependencies' }),
    running: z.number().int().min(0).meta({ description: 'PROCESSING' }),
  })
  .meta({ id: 'Queue' })
export type Queue = z.output<typeof queueSchema>
