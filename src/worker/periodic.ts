import { coerceError, type Logger } from '../infra/logger'

/**
 * A pass run every interval, one at a time (a slow pass is not overlapped by
 * the next), whose failure is logged once until a pass succeeds again. The
 * worker's background jobs (sweeper, retention, scheduler) each run on one.
 */
export class Periodic {
  private timer: ReturnType<typeof setInterval> | null = null
  private busy: Promise<unknown> | null = null
  private failing = false

  constructor(private readonly o: { name: string; logger: Logger; pass: () => Promise<unknown> }) {}

  start(intervalMs: number): void {
    this.timer ??= setInterval(() => {
      if (this.busy) return
      this.busy = this.o
        .pass()
        .then(() => {
          if (this.failing) this.o.logger.info(`${this.o.name} works again`)
          this.failing = false
        })
        .catch((e) => {
          if (!this.failing) this.o.logger.warn(`${this.o.name} failed; will retry`, { error: coerceError(e).message })
          this.failing = true
        })
        .finally(() => (this.busy = null))
    }, intervalMs)
  }

  /** Stops the timer and waits for a pass under way. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.busy
  }
}
