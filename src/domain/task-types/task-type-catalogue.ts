import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020'
import type { Db } from '../../infra/db'
import { coerceError, type Logger } from '../../infra/logger'
import type { TaskType } from '../../handlers/handler'
import { ConflictError, ForbiddenError, NotFoundError, validationErrorFromIssues, type ZodLikeIssue } from '../errors'
import type { Principal } from '../tokens/token'
import { payloadJsonSchema, type TaskTypeInfo } from './task-type'
import { deleteRegisteredType, listRegisteredTypes, type RegisteredType } from './task-type.repository'

/** How long a registered type's schema is trusted before it is read again (a worker may have changed it). */
const REFRESH_MS = 2000

interface Known {
  row: RegisteredType
  validate?: ValidateFunction
}

/**
 * Every task type the API can accept: the built-in ones (their zod schemas)
 * and those workers registered in Postgres (their JSON Schemas, checked with
 * Ajv). The registered ones are cached and read again every couple of
 * seconds, or at once for a name not seen yet, so a type a worker has just
 * registered is accepted on its first POST.
 */
export class TaskTypeCatalogue {
  private registered = new Map<string, Known>()
  private loadedAt = Number.NEGATIVE_INFINITY
  private loading: Promise<void> | null = null
  // Formats are not checked as formats: zod's own check of one is the pattern beside it (a URL's scheme, payloadJsonSchema).
  private readonly ajv = new Ajv2020({ allErrors: true, strict: false, verbose: true, validateFormats: false, logger: false })

  constructor(
    private readonly db: Db,
    private readonly builtins: Record<string, TaskType>,
    private readonly logger?: Logger,
  ) {
    // The built-in schemas never change: converted once, not on every /readyz and listing.
    this.builtinSchemas = new Map(Object.entries(builtins).map(([name, t]) => [name, payloadJsonSchema(t.payload)]))
  }

  private readonly builtinSchemas: Map<string, Record<string, unknown>>

  /** Throws a ValidationError naming the field when the type is unknown or the payload does not match its schema. */
  async validate(type: string, payload: unknown): Promise<void> {
    // Own keys only: "constructor" would otherwise find an Object.prototype function.
    const builtin = Object.hasOwn(this.builtins, type) ? this.builtins[type] : undefined
    if (builtin) {
      const parsed = builtin.payload.safeParse(payload)
      if (!parsed.success) throw validationErrorFromIssues(parsed.error.issues, ['payload'])
      return
    }
    const known = await this.lookUp(type)
    if (!known) {
      const names = [...new Set([...Object.keys(this.builtins), ...this.registered.keys()])].sort()
      throw validationErrorFromIssues([{ path: ['type'], message: `unknown task type "${type}"; known types: ${names.join(', ')}` }])
    }
    known.validate ??= this.compile(known.row)
    if (!known.validate(payload)) throw validationErrorFromIssues((known.validate.errors ?? []).map(toIssue), ['payload'])
  }

  /**
   * Forgets a registered type no live worker handles (an admin's action): POSTs
   * of it are refused as unknown from then on, here at once and on other API
   * instances within REFRESH_MS. Its tasks already stored stay, and run if a
   * worker registers the type again.
   */
  async remove(who: Principal, name: string): Promise<void> {
    if (!who.admin) throw new ForbiddenError('only an admin token may remove a task type')
    if (Object.hasOwn(this.builtins, name)) throw new ConflictError(`task type "${name}" is built in and cannot be removed`)
    const outcome = await deleteRegisteredType(this.db, name)
    if (outcome === 'unknown') throw new NotFoundError(`task type "${name}" not found`)
    if (outcome !== 'deleted') {
      throw new ConflictError(
        `task type "${name}" is handled by live workers (${outcome.liveWorkers.join(', ')}); stop them or drop it from their handler modules first`,
      )
    }
    // A reload that read the table before the delete must not bring the type back once it lands.
    await this.loading?.catch(() => {})
    const known = this.registered.get(name)
    if (known?.validate) this.ajv.removeSchema(known.row.payload_schema)
    this.registered.delete(name)
  }

  /** Every type, built-in first, with whether a live worker handles it. */
  async list(): Promise<TaskTypeInfo[]> {
    const rows = new Map((await listRegisteredTypes(this.db)).map((r) => [r.name, r]))
    const builtins = Object.entries(this.builtins).map(([name, t]) =>
      info(name, true, this.builtinSchemas.get(name)!, t.timeoutMs ?? null, rows.get(name)?.workers ?? []),
    )
    const others = [...rows.values()].filter((r) => !Object.hasOwn(this.builtins, r.name))
    return [...builtins, ...others.map((r) => info(r.name, false, r.payload_schema, r.timeout_ms, r.workers))]
  }

  /** A schema Ajv cannot compile is not the client's fault: its payloads are left to the worker's own parse. */
  private compile(row: RegisteredType): ValidateFunction {
    try {
      return this.ajv.compile(row.payload_schema)
    } catch (e) {
      this.logger?.warn('cannot compile a registered payload schema; the worker alone checks its payloads', { type: row.name, error: coerceError(e).message })
      return Object.assign(() => true, { errors: null }) as unknown as ValidateFunction
    }
  }

  private async lookUp(type: string): Promise<Known | undefined> {
    const stale = performance.now() - this.loadedAt > REFRESH_MS
    if (stale || !this.registered.has(type)) {
      const load = this.reload()
      // A known type is served from the cache while it is read again; an unknown one waits for the read.
      if (!this.registered.has(type)) await load
    }
    return this.registered.get(type)
  }

  private reload(): Promise<void> {
    this.loading ??= listRegisteredTypes(this.db)
      .then((rows) => {
        const next = new Map<string, Known>()
        for (const row of rows) {
          const before = this.registered.get(row.name)
          // A validator compiled for the same schema is kept: compiling is the costly part.
          if (before && before.row.updated_at.getTime() === row.updated_at.getTime()) next.set(row.name, before)
          else next.set(row.name, { row })
        }
        // Ajv keeps every schema it compiled: let go of those no longer in use.
        for (const [name, old] of this.registered) if (old.validate && next.get(name) !== old) this.ajv.removeSchema(old.row.payload_schema)
        this.registered = next
        this.loadedAt = performance.now()
      })
      .finally(() => {
        this.loading = null
      })
    return this.loading
  }
}

function info(name: string, builtin: boolean, schema: Record<string, unknown>, timeoutMs: number | null, workers: RegisteredType['workers']): TaskTypeInfo {
  return {
    name,
    builtin,
    payload_schema: schema,
    timeout_ms: timeoutMs,
    handled: workers.length > 0,
    workers: workers.map((w) => ({ worker_id: w.worker_id, last_seen_at: w.last_seen_at.toISOString() })),
  }
}

/** An Ajv error as a zod-like issue: the path names the field itself, and a format's regex is not quoted at the user. */
function toIssue(e: ErrorObject): ZodLikeIssue {
  const path: PropertyKey[] = e.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
  if (e.keyword === 'required') return { path: [...path, (e.params as { missingProperty: string }).missingProperty], message: 'is required' }
  if (e.keyword === 'additionalProperties')
    return { path: [...path, (e.params as { additionalProperty: string }).additionalProperty], message: 'unknown field' }
  const format = (e.parentSchema as { format?: unknown } | undefined)?.format
  if (e.keyword === 'pattern' && typeof format === 'string') return { path, message: `must be a valid ${format}` }
  return { path, message: e.message ?? 'is invalid' }
}
