import { demoTask } from './demo.task'
import { defineHandler, sleep } from './handler'

/**
 * Sleeps in steps (DEMO_WORK_MS in all, unless the payload says), reporting
 * progress after each; `fail: true` throws, to exercise retries.
 */
export const demoHandler = (demoWorkMs: number) =>
  defineHandler({
    ...demoTask,
    async run(payload, ctx) {
      const duration = payload.duration_ms ?? demoWorkMs
      const steps = payload.steps ?? (duration > 0 ? 4 : 1)
      for (let step = 1; step <= steps; step++) {
        await sleep(duration / steps, ctx.signal)
        if (payload.fail && step === steps) throw new Error('demo task failed as asked (payload.fail)')
        if (step < steps) await ctx.progress(step / steps)
      }
      return { steps, duration_ms: duration }
    },
  })
