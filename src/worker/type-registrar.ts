import type { Db } from '../infra/db'
import { coerceError, type Logger } from '../infra/logger'
import type { HandlerModule } from '../handlers/handler'
import { payloadJsonSchema, TYPE_HEARTBEAT_MS, type TaskTypeRegistration } from '../domain/task-types/task-type'
import * as types from '../domain/task-types/task-type.repository'

/** What a worker tells Postgres of each handler it runs: the API validates payloads against it and shows who runs what. */
export function registrationsOf(handlers: HandlerModule): TaskTypeRegistration[] {
  return Object.entries(handlers).map(([name, h]) => ({ name, payloadSchema: payloadJsonSchema(h.payload), timeoutMs: h.timeoutMs ?? null }))
}

/**
 * Registers the worker's types when it starts, says it is still here every
 * few seconds, and takes its name off them when it stops, so the API can
 * tell a type nobody handles.
 */
export class TypeRegistrar {
  private timer: ReturnType<typeof setInterval> | undefined

  constructor(
    private readonly o: { db: Db; workerId: string; logger: Logger },
    private readonly registrations: TaskTypeRegistration[],
  ) {}

  async start(): Promise<void> {
    await types.registerWorkerTypes(this.o.db, this.o.workerId, this.registrations)
    this.timer = setInterval(() => {
      // Registered again, not only touched: rows a restarted database or a cleanup lost come back.
      types
        .registerWorkerTypes(this.o.db, this.o.workerId, this.registrations)
        .catch((e) => this.o.logger.warn('could not refresh task type registrations', { error: coerceError(e).message }))
    }, TYPE_HEARTBEAT_MS)
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await types.forgetWorkerTypes(this.o.db, this.o.workerId)
  }
}
