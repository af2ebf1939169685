import { demoHandler } from './demo.handler'
import type { TaskHandler } from './handler'

/**
 * Task type -> handler, for the worker only; each handler spreads its type
 * from the catalogue, so the schema the API checks is the one the run parses.
 */
export const handlers: Record<string, TaskHandler> = {
  demo: demoHandler,
}
