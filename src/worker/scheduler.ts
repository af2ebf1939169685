import type { Db } from '../infra/db'
import { coerceError, type Logger } from '../infra/logger'
import { fireDueSchedules } from '../domain/schedules/schedule.service'
import type { StreamDeps } from '../domain/streams'

export interface SchedulerOptions extends StreamDeps {
  db: Db
  logger: Logger
}

/**
 * Every worker runs one, with no leader: each looks for due schedules every
 * interval and fires them (fireSchedule), and the guarded UPDATE there lets
 * exactly one worker create each tick's task. A worker that dies mid-tick
 * holds nothing: its transaction rolls back and the next look fires the tick.
 */
export class Scheduler {
  private timer: ReturnType<typeof setInterval> | null = null
  private busy: Promise<unknown> | null = null
  private failing = false

  constructor(private readonly o: SchedulerOptions) {}

  /** One look: fires every due schedule; how many tasks it created. */
  tickOnce(now = new Date()): Promise<number> {
    return fireDueSchedules(this.o, now)
  }

  start(intervalMs: number): void {
    this.timer ??= setInterval(() => {
      if (this.busy) return
      this.busy = this.tickOnce()
        .then(() => {
          if (this.failing) this.o.logger.info('scheduler recovered')
          this.failing = false
        })
        .catch((e) => {
          if (!this.failing) this.o.logger.warn('scheduler failed; will retry', { error: coerceError(e).message })
          this.failing = true
        })
        .finally(() => (this.busy = null))
    }, intervalMs)
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.busy
  }
}
