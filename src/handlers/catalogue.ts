import { demoTask } from './demo.task'
import type { TaskType } from './handler'

/**
 * Task type -> payload schema and default timeout, with no run code: the API
 * checks payloads against it without loading any handler. Adding a type: its
 * schema file here, its handler in registry.ts.
 */
export const catalogue: Record<string, TaskType> = {
  demo: demoTask,
}

export const taskTypes = () => Object.keys(catalogue)
