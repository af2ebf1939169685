import { demoHandler } from './demo.handler'
import type { TaskHandler } from './handler'

/** Task type -> handler. Adding a type: write its file, add one line here. */
export const handlers: Record<string, TaskHandler> = {
  demo: demoHandler,
}

export const handlerTypes = () => Object.keys(handlers)
