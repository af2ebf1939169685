/**
 * A task type as the API knows it: its name, the JSON Schema its payloads
 * must match, and which workers handle it. Built-in types come from
 * handlers/catalogue.ts; the rest were registered by the workers that run them.
 */
import { z } from 'zod'

export const taskTypeSchema = z
  .object({
    name: z.string(),
    builtin: z.boolean().meta({ description: 'shipped with Taskline (demo, http); known without any worker' }),
    payload_schema: z.record(z.string(), z.unknown()).meta({ description: "JSON Schema (draft 2020-12) of the payload, made from the handler's zod schema" }),
    timeout_ms: z.number().int().nullable().meta({ description: "the type's default limit on one attempt; null: the worker's TASK_TIMEOUT_MS" }),
    handled: z.boolean().meta({ description: 'whether a live worker handles it; tasks of a type nobody handles wait until one does' }),
    workers: z
      .array(z.object({ worker_id: z.string(), last_seen_at: z.iso.datetime({ offset: true }) }))
      .meta({ description: 'the live workers that handle it' }),
  })
  .meta({ id: 'TaskType' })
export type TaskTypeInfo = z.output<typeof taskTypeSchema>

/** What a worker registers for each type it runs. */
export interface TaskTypeRegistration {
  name: string
  payloadSchema: Record<string, unknown>
  timeoutMs: number | null
}

/**
 * A worker refreshes its registrations this often; one not refreshed for
 * three times as long is taken for gone (it died without deleting them).
 */
export const TYPE_HEARTBEAT_MS = 10_000
export const TYPE_LIVENESS_MS = 3 * TYPE_HEARTBEAT_MS

/**
 * The JSON Schema of a handler's payload schema, as the API validates it: the
 * input side (a default makes a field optional), never stricter than zod
 * itself. What JSON Schema cannot say exactly is left open, and the worker's
 * own parse checks it before each run: coercions, .catch and preprocessing
 * accept what they will convert; a regex with flags loses its pattern (JSON
 * Schema patterns have none). Formats are not checked as formats (zod checks
 * them its own way): its regex is kept as the pattern, and a URL, which zod
 * hands to the URL parser, must at least start with a scheme (urlScheme).
 */
export function payloadJsonSchema(schema: z.ZodType): Record<string, unknown> {
  const open = new WeakSet<object>()
  return z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
    override(ctx) {
      const def = (ctx.zodSchema as unknown as { _zod: { def: ZodDef } })._zod.def
      const json = ctx.jsonSchema as Record<string, unknown>
      if (acceptsWhatItConverts(def)) {
        for (const key of Object.keys(json)) delete json[key]
        open.add(ctx.zodSchema)
        return
      }
      if (def.type === 'string') loosenString(def, json)
      if (def.type === 'object' && Array.isArray(json.required)) {
        // A field that accepts anything accepts its absence too (a .catch, a coercion of undefined).
        json.required = (json.required as string[]).filter((k) => !(def.shape?.[k] && open.has(def.shape[k] as object)))
      }
    },
  }) as Record<string, unknown>
}

/**
 * Whether a payload JSON Schema can accept an object: a task's payload is
 * always one, so a type whose schema takes only strings (z.string()) could
 * never run anything.
 */
export function acceptsObject(json: Record<string, unknown>): boolean {
  const branches = (json.anyOf ?? json.oneOf) as Record<string, unknown>[] | undefined
  if (branches && !branches.some(acceptsObject)) return false
  if (Array.isArray(json.allOf) && !(json.allOf as Record<string, unknown>[]).every(acceptsObject)) return false
  const type = json.type
  return type === undefined || type === 'object' || (Array.isArray(type) && type.includes('object'))
}

interface ZodDef {
  type: string
  coerce?: boolean
  in?: { _zod: { def: ZodDef } }
  shape?: Record<string, unknown>
  checks?: { _zod: { def: { format?: string; pattern?: RegExp } } }[]
}

const acceptsWhatItConverts = (def: ZodDef) => def.coerce === true || def.type === 'catch' || (def.type === 'pipe' && def.in?._zod.def.type === 'transform')

/**
 * What every URL the WHATWG parser takes without a base starts with: a
 * scheme and its colon, after any leading controls or spaces (stripped) and
 * with tabs and newlines anywhere (removed). Looser than the parser, never
 * stricter: "notaurl" is a 400 at POST, not a FAILED task.
 */
const urlScheme = '^[\\u0000-\\u0020]*[A-Za-z][A-Za-z0-9+.\\-\\t\\n\\r]*:'

function loosenString(def: ZodDef, json: Record<string, unknown>): void {
  const flagged = (def.checks ?? []).some((c) => c._zod.def.pattern instanceof RegExp && c._zod.def.pattern.flags.replace('u', '') !== '')
  if (flagged) {
    delete json.pattern
    delete json.allOf
  }
  if (json.format === 'uri' && json.pattern === undefined) json.pattern = urlScheme
}
