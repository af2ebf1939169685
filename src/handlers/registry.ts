import { builtinTypes } from './catalogue'
import { demoHandler } from './demo.handler'
import type { HandlerModule, HandlerSettings } from './handler'
import { runHttpTask } from './http.handler'

/**
 * The built-in types' handlers, for the worker only; each spreads its type
 * from the catalogue, so the schema the API checks is the one the run parses.
 */
export function builtinHandlers(settings: HandlerSettings): HandlerModule {
  const types = builtinTypes(settings.http)
  return { demo: { ...types.demo!, run: demoHandler.run }, http: { ...types.http!, run: runHttpTask } }
}
