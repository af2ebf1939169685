import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { HandlerModule, TaskHandler } from '../handlers/handler'
import { acceptsObject, payloadJsonSchema } from '../domain/task-types/task-type'

/** A handler module that cannot be used: the worker does not start, and says why. */
export class HandlerModuleError extends Error {}

/** The handlers a worker runs, with the file each came from (or 'built-in'). */
export interface LoadedHandlers {
  handlers: HandlerModule
  sources: Map<string, string>
}

const typeName = /^[a-z0-9][a-z0-9._:-]{0,99}$/i

function checkHandler(name: string, h: unknown, file: string): asserts h is TaskHandler {
  if (!typeName.test(name)) {
    throw new HandlerModuleError(`${file}: task type "${name}" must be 1-100 letters, digits and . _ : - (starting with a letter or digit)`)
  }
  const handler = h as Partial<TaskHandler> | null
  if (typeof handler?.run !== 'function') throw new HandlerModuleError(`${file}: "${name}" has no run(payload, ctx) function; wrap it in defineHandler()`)
  if (typeof handler.payload?.safeParse !== 'function') throw new HandlerModuleError(`${file}: "${name}" has no zod payload schema`)
  if ('_zod' in handler.payload && !acceptsObject(payloadJsonSchema(handler.payload))) {
    throw new HandlerModuleError(`${file}: "${name}" payload schema must accept a JSON object, as every task's payload is one: use z.object({...})`)
  }
  const t = handler.timeoutMs
  if (t !== undefined && !(Number.isInteger(t) && t > 0)) throw new HandlerModuleError(`${file}: "${name}" timeoutMs must be a positive integer`)
}

/**
 * Imports each handler module (a .ts or .js file whose default export maps
 * task type names to handlers) and merges them over the built-in types. A name
 * defined twice, by two files or by a file and the built-ins, is an error
 * naming both, so which handler runs is never a matter of load order.
 */
export async function loadHandlerModules(files: readonly string[], builtins: HandlerModule, cwd = process.cwd()): Promise<LoadedHandlers> {
  const handlers: HandlerModule = { ...builtins }
  const sources = new Map(Object.keys(builtins).map((name) => [name, 'built-in']))
  // One file named twice (./tasks.ts,tasks.ts) is loaded once, not a clash with itself.
  for (const path of new Set(files.map((f) => resolve(cwd, f)))) {
    let mod: { default?: unknown }
    try {
      mod = await import(pathToFileURL(path).href)
    } catch (e) {
      throw new HandlerModuleError(`cannot load handler module ${path}: ${e instanceof Error ? e.message : String(e)}`)
    }
    const exported = mod.default
    if (typeof exported !== 'object' || exported === null || Array.isArray(exported)) {
      throw new HandlerModuleError(`${path}: its default export must be an object of task type name -> defineHandler({...})`)
    }
    for (const [name, handler] of Object.entries(exported)) {
      checkHandler(name, handler, path)
      const earlier = sources.get(name)
      if (earlier) throw new HandlerModuleError(`task type "${name}" is defined twice: in ${earlier} and in ${path}`)
      handlers[name] = handler
      sources.set(name, path)
    }
  }
  return { handlers, sources }
}
