import { describe, expect, test } from 'bun:test'
import { storablePrefix, storableText, toStorableJson } from './jsonb'

describe('storable values', () => {
  test('text loses NUL and lone surrogates, nothing else', () => {
    expect(storableText('a\0b\uD800c😀')).toBe('a\uFFFDb\uFFFDc😀')
    expect(storablePrefix(`${'a'.repeat(499)}😀`, 500)).toBe(`${'a'.repeat(499)}\uFFFD`)
    expect(storablePrefix('short', 500)).toBe('short')
  })

  test('JSON keeps its shape, with storable strings and keys', () => {
    const r = toStorableJson({ s: 'a\0b', list: ['\uDC00', 1, null], 'k\0': { deep: 'ok' }, when: new Date(0), gone: undefined })
    expect(r).toEqual({
      ok: true,
      json: JSON.stringify({ s: 'a\uFFFDb', list: ['\uFFFD', 1, null], 'k\uFFFD': { deep: 'ok' }, when: '1970-01-01T00:00:00.000Z' }),
    })
    expect(toStorableJson(undefined)).toEqual({ ok: true, json: 'null' })
    expect(toStorableJson({ plain: 'text \\u0000 as written' })).toEqual({ ok: true, json: '{"plain":"text \\\\u0000 as written"}' })
  })

  test('what cannot be JSON says why', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    for (const v of [{ n: 10n }, cyclic]) {
      const r = toStorableJson(v)
      expect(r.ok).toBe(false)
      expect(r.ok || r.error.length > 0).toBe(true)
    }
  })
})
