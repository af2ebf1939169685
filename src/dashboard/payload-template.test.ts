import { describe, expect, test } from 'bun:test'
import { z } from 'zod'
import { payloadTemplate, templateText } from './payload-template'

const NOW = new Date('2030-01-02T03:04:05.000Z')
const template = (schema: unknown) => payloadTemplate(schema, NOW)
/** As the API makes a type's payload_schema from a handler's zod schema. */
const fromZod = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' })

describe('payloadTemplate', () => {
  test('required properties come first, each with an example by type and format', () => {
    const t = template(
      fromZod(
        z.object({
          note: z.string().optional(),
          to: z.email(),
          subject: z.string(),
          callback: z.url(),
          at: z.iso.datetime(),
          day: z.iso.date(),
          count: z.number().int().min(5),
          ratio: z.number(),
          urgent: z.boolean(),
          tags: z.array(z.string()),
        }),
      ),
    )
    expect(t.value).toEqual({
      to: 'user@example.com',
      subject: '',
      callback: 'https://example.com',
      at: '2030-01-02T03:04:05.000Z',
      day: '2030-01-02',
      count: 5,
      ratio: 0,
      urgent: false,
      tags: [],
    })
    expect(Object.keys(t.value as object)[0]).toBe('to')
  })

  test('a default is used as it is, and an optional property with one is included: sending it changes nothing', () => {
    const t = template(fromZod(z.object({ method: z.enum(['GET', 'POST']).default('POST'), retries: z.number().int().min(1).default(3), to: z.string() })))
    expect(t.value).toEqual({ to: '', method: 'POST', retries: 3 })
    expect(Object.keys(t.value as object)).toEqual(['to', 'method', 'retries'])
    expect(t.optional).toEqual([])
  })

  test('optional properties without a default are left out and listed, with what they take and their description', () => {
    const t = template(
      fromZod(
        z.object({
          url: z.url(),
          timeout_ms: z.number().int().min(1).optional().meta({ description: 'limit on one request' }),
          mode: z.enum(['fast', 'slow']).optional(),
          when: z.iso.datetime().optional(),
        }),
      ),
    )
    expect(t.value).toEqual({ url: 'https://example.com' })
    expect(t.optional).toEqual([
      { path: 'timeout_ms', kind: 'integer', description: 'limit on one request' },
      { path: 'mode', kind: 'one of "fast", "slow"', description: null },
      { path: 'when', kind: 'string, date-time', description: null },
    ])
  })

  test('enum takes its first value, const its value, examples their first', () => {
    const t = template({
      type: 'object',
      properties: { size: { type: 'string', enum: ['small', 'large'] }, v: { const: 2 }, name: { type: 'string', examples: ['Ada'] } },
      required: ['size', 'v', 'name'],
    })
    expect(t.value).toEqual({ size: 'small', v: 2, name: 'Ada' })
  })

  test('nested objects recurse, and their optional fields are listed by dotted path', () => {
    const t = template(fromZod(z.object({ target: z.object({ host: z.string(), port: z.number().int().min(1), tls: z.boolean().optional() }) })))
    expect(t.value).toEqual({ target: { host: '', port: 1 } })
    expect(t.optional).toEqual([{ path: 'target.tls', kind: 'boolean', description: null }])
  })

  test("numbers: the allowed value nearest 0, so zod's int() bounds of ±2^53 never show", () => {
    const t = template({
      type: 'object',
      properties: {
        a: { type: 'integer', minimum: 2 },
        b: { type: 'integer', exclusiveMinimum: 0 },
        c: { type: 'number', maximum: -5 },
        d: { type: 'number', minimum: -10, maximum: 10 },
        e: { type: 'integer', exclusiveMaximum: -2.5 },
        f: { type: 'number', minimum: 0.5 },
      },
      required: ['a', 'b', 'c', 'd', 'e', 'f'],
    })
    expect(t.value).toEqual({ a: 2, b: 1, c: -5, d: 0, e: -3, f: 0.5 })
    expect(template(fromZod(z.object({ n: z.number().int(), m: z.number().int().positive() }))).value).toEqual({ n: 0, m: 1 })
  })

  test('a nullable field shows a value of its real type; a union takes its first choice', () => {
    const t = template(fromZod(z.object({ label: z.string().nullable(), id: z.union([z.number().int(), z.string()]) })))
    expect(t.value).toEqual({ label: '', id: 0 })
  })

  test('$ref is followed, with its sibling keywords, and a recursive schema ends', () => {
    const node: z.ZodType = z.object({
      name: z.string(),
      get children() {
        return z.array(node).min(1)
      },
    })
    const tree = fromZod(z.object({ root: node }))
    const t = template(tree)
    // The recursion is cut where the same $ref would be expanded inside itself.
    expect(t.value).toEqual({ root: { name: '', children: [null] } })

    const withDefs = template({
      type: 'object',
      properties: { body: { $ref: '#/$defs/json', description: 'sent as JSON' } },
      required: [],
      $defs: { json: { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }, { type: 'null' }, { type: 'array' }, { type: 'object' }] } },
    })
    expect(withDefs.value).toEqual({})
    expect(withDefs.optional).toEqual([{ path: 'body', kind: 'any JSON value', description: 'sent as JSON' }])
  })

  test('allOf combines its parts', () => {
    const t = template({
      allOf: [
        { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] },
        { type: 'object', properties: { b: { type: 'boolean' } }, required: ['b'] },
      ],
    })
    expect(t.value).toEqual({ a: '', b: false })
  })

  test('arrays with minItems get that many examples; prefixItems one each', () => {
    const t = template({
      type: 'object',
      properties: {
        ids: { type: 'array', items: { type: 'integer' }, minItems: 2 },
        pair: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'boolean' }] },
      },
      required: ['ids', 'pair'],
    })
    expect(t.value).toEqual({ ids: [0, 0], pair: ['', false] })
  })

  test("the built-in types: demo's template is {} with its three fields listed; http's has its url and default method", () => {
    const demo = template({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: {
        duration_ms: { type: 'integer', minimum: 0, maximum: 3600000 },
        steps: { type: 'integer', minimum: 1, maximum: 1000 },
        fail: { type: 'boolean' },
      },
      additionalProperties: false,
    })
    expect(demo.value).toEqual({})
    expect(demo.optional.map((f) => f.path)).toEqual(['duration_ms', 'steps', 'fail'])

    const http = template({
      type: 'object',
      properties: {
        url: { type: 'string', format: 'uri' },
        method: { default: 'POST', type: 'string', enum: ['GET', 'POST'] },
        headers: { type: 'object', additionalProperties: { type: 'string' } },
      },
      required: ['url'],
    })
    expect(templateText(http)).toBe('{\n  "url": "https://example.com",\n  "method": "POST"\n}')
    expect(http.optional).toEqual([{ path: 'headers', kind: 'object', description: null }])
  })

  test('a schema that says nothing gives {}, and required names with no schema get null', () => {
    expect(template({}).value).toEqual({})
    expect(template(true).value).toEqual({})
    expect(template({ type: 'object', required: ['x'] }).value).toEqual({ x: null })
    expect(templateText(template({}))).toBe('{}')
  })
})
