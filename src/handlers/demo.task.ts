import { z } from 'zod'
import type { TaskType } from './handler'

/** The demo type's payload, apart from its run code so the API can check it without loading that. */
export const demoTask = {
  payload: z.strictObject({
    duration_ms: z.number().int().min(0).max(3_600_000).optional(),
    steps: z.number().int().min(1).max(1000).optional(),
    fail: z.boolean().optional(),
  }),
} satisfies TaskType
