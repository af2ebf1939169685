import { describe, expect, test } from 'bun:test'
import Ajv2020 from 'ajv/dist/2020'
import fc from 'fast-check'
import { z } from 'zod'
import { payloadJsonSchema } from './task-type'

/** Validates as the API does (task-type-catalogue.ts): formats are not checked. */
const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false, logger: false })

/** Schemas whose zod checks JSON Schema can only approximate. */
const schemas: Record<string, z.ZodType> = {
  coerced: z.object({ n: z.coerce.number(), b: z.coerce.boolean(), s: z.coerce.string() }),
  flaggedRegex: z.object({ code: z.string().regex(/^[a-z]+$/i), line: z.string().regex(/^a.b$/s) }),
  preprocessed: z.object({ p: z.preprocess((v) => (typeof v === 'string' ? Number(v) : v), z.number()) }),
  caught: z.object({ c: z.number().catch(0), name: z.string() }),
  formats: z.object({ url: z.url(), email: z.email(), when: z.iso.datetime().optional() }),
  plain: z.strictObject({ steps: z.number().int().min(1).max(10), tags: z.array(z.string()).max(3), mode: z.enum(['a', 'b']).default('a') }),
}

/** Inputs that zod accepts one way or another. */
const inputs = [
  { n: '5', b: 'yes', s: 12 },
  { code: 'ABC', line: 'a\nb' },
  { p: '12' },
  { c: 'not a number', name: 'x' },
  { name: 'x' },
  { url: 'http://exa mple.com', email: 'a@b.co' },
  { url: ' \u0001ht\ttp://x.example', email: 'a@b.co' },
  { url: 'mailto:a@b', email: 'a@b.co' },
  { url: 'https://bücher.example/ä', email: 'first.last@sub.example.org', when: '2026-01-01T00:00:00Z' },
  { steps: 3, tags: ['x'] },
]

describe('a registered payload schema', () => {
  test('is never stricter than the handler: whatever zod accepts, the API accepts (examples)', () => {
    for (const [name, schema] of Object.entries(schemas)) {
      const validate = ajv.compile(payloadJsonSchema(schema))
      for (const input of inputs) {
        if (schema.safeParse(input).success) expect({ name, input, ok: validate(input) }).toEqual({ name, input, ok: true })
      }
    }
  })

  test('is never stricter than the handler: whatever zod accepts, the API accepts (generated)', () => {
    const validators = Object.entries(schemas).map(([name, s]) => [name, s, ajv.compile(payloadJsonSchema(s))] as const)
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('n', 'b', 's', 'code', 'line', 'p', 'c', 'name', 'url', 'email', 'when', 'steps', 'tags', 'mode'), fc.jsonValue()),
        (input) => {
          for (const [, schema, validate] of validators) if (schema.safeParse(input).success && !validate(input)) return false
          return true
        },
      ),
      { numRuns: 2000 },
    )
  })

  test('a URL is a 400 at POST when it has no scheme; whatever the URL parser takes passes (generated)', () => {
    const validate = ajv.compile(payloadJsonSchema(z.object({ url: z.url() })))
    expect(validate({ url: 'notaurl' })).toBe(false)
    expect(validate({ url: '/relative/path' })).toBe(false)
    const url = fc.oneof(
      fc.webUrl(),
      fc.string(),
      fc.tuple(fc.constantFrom('', ' ', '\t', '\u0001'), fc.webUrl(), fc.nat()).map(([lead, u, at]) => `${lead}${u.slice(0, at % 6)}\t${u.slice(at % 6)}`),
    )
    fc.assert(
      fc.property(url, (u) => !z.url().safeParse(u).success || validate({ url: u })),
      { numRuns: 2000 },
    )
  })

  test('still refuses what zod refuses where JSON Schema can say it', () => {
    const validate = ajv.compile(payloadJsonSchema(schemas.plain!))
    expect(validate({ steps: 0, tags: [] })).toBe(false)
    expect(validate({ steps: 1, tags: [], extra: 1 })).toBe(false)
    expect(validate({ tags: [] })).toBe(false)
    const email = ajv.compile(payloadJsonSchema(schemas.formats!))
    expect(email({ url: 'x', email: 'not an address' })).toBe(false)
    expect(payloadJsonSchema(schemas.formats!)).toMatchObject({ properties: { email: { format: 'email' }, url: { format: 'uri' } } })
  })
})
