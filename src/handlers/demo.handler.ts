import { z } from 'zod'
import { defineHandler, sleep } from './handler'

/** Sleeps in steps, reporting progress after each; `fail: true` throws, to exercise retries. */
export const demoHandler = defineHandler({
  payload: z.strictObject({
    duration_ms: z.number().int().min(0).max(3_600_000).optional(),
    steps: z.number().int().min(1).max(1000).optional(),
    fail: z.boolean().optional(),
  }),
  async run(payload, ctx) {
    const duration = payload.duration_ms ?? ctx.settings.demoWorkMs
    const steps = payload.steps ?? (duration > 0 ? 4 : 1)
    for (let step = 1; step <= steps; step++) {
      await sleep(duration / steps, ctx.signal)
      if (payload.fail && step === steps) throw new Error('demo task failed as asked (payload.fail)')
      if (step < steps) await ctx.progress(step / steps)
    }
    return { steps, duration_ms: duration }
  },
})
