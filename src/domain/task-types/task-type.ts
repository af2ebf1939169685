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
 * The JSON Schema of a handler's payload schema, as the API validates it:
 * the input side (defaults make a field optional), and what JSON Schema
 * cannot say (transforms, custom checks) left open; the worker's own
 * parse still applies those before each run.
 */
export function payloadJsonSchema(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>
}
