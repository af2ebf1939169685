import type { Db } from '../infra/db'
import type { Logger } from '../infra/logger'
import { Periodic } from './periodic'
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
  private readonly periodic: Periodic

  constructor(private readonly o: SchedulerOptions) {
    this.periodic = new Periodic({ name: 'the scheduler', logger: o.logger, pass: () => this.tickOnce() })
  }

  /** One look: fires every due schedule; how many tasks it created. */
  tickOnce(now = new Date()): Promise<number> {
    return fireDueSchedules(this.o, now)
  }

  start(intervalMs: number): void {
    this.periodic.start(intervalMs)
  }

  stop(): Promise<void> {
    return this.periodic.stop()
  }
}
