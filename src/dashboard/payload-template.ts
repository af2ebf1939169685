/**
 * A payload template from a task type's JSON Schema (draft 2020-12, as zod's
 * toJSONSchema writes it with io 'input'): what the create form puts in the
 * payload field when a type is chosen. Pure, so it is tested without a page.
 *
 * The template holds the required properties, each with an example value,
 * and the optional ones that have a default (sending it changes nothing).
 * Other optional properties are left out and returned in `optional`, for the
 * form to list beside the field: an example value for them would not be
 * neutral (a 1 ms timeout, a 0 ms duration), and a template sent untouched
 * should mean what the type means by default.
 */

type Schema = Record<string, unknown>

export interface OptionalField {
  /** Dotted from the payload's top, e.g. "options.retries". */
  path: string
  /** A short word on what it takes ("integer", "string, email"), or null when the schema does not say. */
  kind: string | null
  description: string | null
}

export interface PayloadTemplate {
  value: unknown
  optional: OptionalField[]
}

const isSchema = (s: unknown): s is Schema => typeof s === 'object' && s !== null && !Array.isArray(s)
const has = (s: Schema, key: string) => Object.hasOwn(s, key)

/** The template of a payload schema; `now` is what a date-time example shows. */
export function payloadTemplate(schema: unknown, now: Date = new Date()): PayloadTemplate {
  const sampler = new Sampler(isSchema(schema) ? schema : {}, now)
  const value = sampler.sample(schema, '')
  return { value: value === undefined ? {} : value, optional: sampler.optional }
}

/** The template as the payload field shows it. */
export const templateText = (t: PayloadTemplate) => JSON.stringify(t.value, null, 2)

class Sampler {
  readonly optional: OptionalField[] = []
  /** The $refs being expanded, so a recursive schema ends instead of looping. */
  private readonly expanding = new Set<string>()

  constructor(
    private readonly root: Schema,
    private readonly now: Date,
  ) {}

  /** An example value for the schema; undefined when it says nothing to build one from. */
  sample(raw: unknown, path: string): unknown {
    if (!isSchema(raw)) return undefined
    if (has(raw, 'default')) return structuredClone(raw.default)
    if (has(raw, 'const')) return structuredClone(raw.const)
    if (Array.isArray(raw.examples) && raw.examples.length > 0) return structuredClone(raw.examples[0])
    if (Array.isArray(raw.enum) && raw.enum.length > 0) return structuredClone(raw.enum[0])
    if (typeof raw.$ref === 'string') return this.sampleRef(raw, raw.$ref, path)
    if (Array.isArray(raw.allOf)) return this.sample(raw.allOf.filter(isSchema).reduce(merge, withoutKey(raw, 'allOf')), path)
    const choices = raw.anyOf ?? raw.oneOf
    if (Array.isArray(choices)) {
      // The first choice that is more than "or null": a nullable field is shown with a value of its real type.
      const choice = choices.find((c) => isSchema(c) && c.type !== 'null') ?? choices[0]
      return this.sample(isSchema(choice) ? merge(withoutKey(withoutKey(raw, 'anyOf'), 'oneOf'), choice) : undefined, path)
    }
    switch (typeOf(raw)) {
      case 'object':
        return this.sampleObject(raw, path)
      case 'array':
        return this.sampleArray(raw, path)
      case 'string':
        return this.sampleString(raw)
      case 'integer':
        return numberFrom(raw, true)
      case 'number':
        return numberFrom(raw, false)
      case 'boolean':
        return false
      case 'null':
        return null
      default:
        return undefined
    }
  }

  private sampleRef(raw: Schema, ref: string, path: string): unknown {
    const target = resolvePointer(this.root, ref)
    if (!target || this.expanding.has(ref)) return undefined
    this.expanding.add(ref)
    try {
      // 2020-12 lets a $ref stand beside other keywords (a description, a default): those apply too.
      return this.sample(merge(target, withoutKey(raw, '$ref')), path)
    } finally {
      this.expanding.delete(ref)
    }
  }

  private sampleObject(s: Schema, path: string): Record<string, unknown> {
    const properties = isSchema(s.properties) ? s.properties : {}
    const required = Array.isArray(s.required) ? s.required.filter((r): r is string => typeof r === 'string') : []
    const out: Record<string, unknown> = {}
    for (const name of required) out[name] = this.sample(properties[name], join(path, name)) ?? null
    for (const [name, prop] of Object.entries(properties)) {
      if (required.includes(name)) continue
      const resolved = this.resolve(prop)
      if (resolved && has(resolved, 'default')) out[name] = structuredClone(resolved.default)
      else this.optional.push({ path: join(path, name), kind: resolved ? kindOf(resolved) : null, description: describe(prop, resolved) })
    }
    return out
  }

  private sampleArray(s: Schema, path: string): unknown[] {
    if (Array.isArray(s.prefixItems)) return s.prefixItems.map((item, i) => this.sample(item, `${path}[${i}]`) ?? null)
    const count = typeof s.minItems === 'number' ? Math.min(s.minItems, 10) : 0
    return Array.from({ length: count }, (_, i) => this.sample(s.items, `${path}[${i}]`) ?? null)
  }

  private sampleString(s: Schema): string {
    switch (s.format) {
      case 'email':
      case 'idn-email':
        return 'user@example.com'
      case 'uri':
      case 'url':
      case 'iri':
        return 'https://example.com'
      case 'date-time':
        return this.now.toISOString()
      case 'date':
        return this.now.toISOString().slice(0, 10)
      case 'uuid':
        return '00000000-0000-4000-8000-000000000000'
      default:
        return ''
    }
  }

  /** A property's schema with its $ref followed, for reading its default and type. */
  private resolve(s: unknown): Schema | null {
    if (!isSchema(s)) return null
    if (typeof s.$ref !== 'string') return s
    const target = resolvePointer(this.root, s.$ref)
    return target ? merge(target, withoutKey(s, '$ref')) : s
  }
}

/** The type a schema names, or the one its keywords imply; null never wins over a real type. */
function typeOf(s: Schema): string | undefined {
  const types = Array.isArray(s.type) ? s.type : [s.type]
  const named = types.find((t) => typeof t === 'string' && t !== 'null') ?? types.find((t) => t === 'null')
  if (typeof named === 'string') return named
  if (isSchema(s.properties) || Array.isArray(s.required)) return 'object'
  if (has(s, 'items') || Array.isArray(s.prefixItems)) return 'array'
  return undefined
}

/** The allowed value nearest 0: zod's int() has bounds of ±(2^53 - 1), which nobody wants as an example. */
function numberFrom(s: Schema, integer: boolean): number {
  const low = edge(s.minimum, s.exclusiveMinimum, 1, integer)
  const high = edge(s.maximum, s.exclusiveMaximum, -1, integer)
  if (low !== undefined && low > 0) return low
  if (high !== undefined && high < 0) return high
  return 0
}

/** The first value a lower (dir 1) or upper (dir -1) bound allows; an exclusive one is stepped past by 1, for numbers too: any value beyond it does. */
function edge(inclusive: unknown, exclusive: unknown, dir: 1 | -1, integer: boolean): number | undefined {
  if (typeof inclusive === 'number') return integer ? (dir > 0 ? Math.ceil(inclusive) : Math.floor(inclusive)) : inclusive
  if (typeof exclusive === 'number') return integer ? (dir > 0 ? Math.floor(exclusive) + 1 : Math.ceil(exclusive) - 1) : exclusive + dir
  return undefined
}

function kindOf(s: Schema): string | null {
  if (Array.isArray(s.enum)) return `one of ${s.enum.map((v) => JSON.stringify(v)).join(', ')}`
  const type = typeOf(s) ?? choiceTypes(s.anyOf ?? s.oneOf)
  if (!type) return null
  return typeof s.format === 'string' ? `${type}, ${s.format}` : type
}

/** "string or number" for a union of a few types; a union of most of them is any JSON value. */
function choiceTypes(choices: unknown): string | undefined {
  if (!Array.isArray(choices)) return undefined
  const types = [...new Set(choices.filter(isSchema).map(typeOf))]
  if (types.length === 0 || types.includes(undefined)) return undefined
  return types.length > 3 ? 'any JSON value' : types.join(' or ')
}

function describe(prop: unknown, resolved: Schema | null): string | null {
  const d = (isSchema(prop) ? prop.description : undefined) ?? resolved?.description
  return typeof d === 'string' ? d : null
}

const join = (path: string, name: string) => (path ? `${path}.${name}` : name)

function withoutKey(s: Schema, key: string): Schema {
  const { [key]: _, ...rest } = s
  return rest
}

/** Two schemas as one, as allOf (or a $ref with siblings) means: properties and required lists combine, other keywords of `b` win. */
function merge(a: Schema, b: Schema): Schema {
  const out: Schema = { ...a, ...b }
  if (isSchema(a.properties) && isSchema(b.properties)) out.properties = { ...a.properties, ...b.properties }
  if (Array.isArray(a.required) && Array.isArray(b.required)) out.required = [...new Set([...a.required, ...b.required])]
  return out
}

/** A local JSON Pointer ("#/$defs/x"); other documents are not fetched. */
function resolvePointer(root: Schema, ref: string): Schema | null {
  if (!ref.startsWith('#')) return null
  let node: unknown = root
  for (const raw of ref.slice(1).split('/').slice(1)) {
    const key = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~')
    if (!isSchema(node) || !has(node, key)) return null
    node = node[key]
  }
  return isSchema(node) ? node : null
}
