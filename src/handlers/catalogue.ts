import { demoTask } from './demo.task'
import type { HttpTaskSettings, TaskType } from './handler'
import { httpTask } from './http.task'

/**
 * The built-in types' payload schemas and default timeouts, with no run code:
 * the API checks their payloads without loading any handler, and without a
 * worker having registered them. Types from users' handler modules reach the
 * API through Postgres instead (domain/task-types).
 */
export function builtinTypes(http: HttpTaskSettings): Record<string, TaskType> {
  return { demo: demoTask, http: httpTask(http) }
}
