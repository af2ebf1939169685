import { builtinTypes } from './catalogue'
import { demoHandler } from './demo.handler'
import type { HandlerModule, HandlerSettings } from './handler'
import { runHttpTask } from './http.handler'
import type { HttpTaskPayload } from './http.task'

/**
 * The built-in types' handlers, for the worker only; each spreads its type
 * from the catalogue, so the schema the API checks is the one the run parses.
 * Their settings come from the worker's config here, not through ctx: a
 * user's handler has no business with the signing secret.
 */
export function builtinHandlers(settings: HandlerSettings): HandlerModule {
  const types = builtinTypes(settings.http)
  return {
    demo: { ...types.demo!, run: demoHandler(settings.demoWorkMs).run },
    http: { ...types.http!, run: (payload, ctx) => runHttpTask(payload as HttpTaskPayload, ctx, settings.http) },
  }
}
