import { describe, expect, test } from 'bun:test'
import { redactTokens } from '../../infra/logger'
import { formatToken, generateSecret, hashSecret, parseToken, secretMatches } from './token'

describe('api tokens', () => {
  test('round-trip: a formatted token parses back to its id and secret', () => {
    const secret = generateSecret()
    expect(secret).toHaveLength(43)
    expect(parseToken(formatToken(42, secret))).toEqual({ id: 42, secret })
  })
  test('forged or truncated tokens do not parse', () => {
    const good = formatToken(7, generateSecret())
    for (const bad of [good.slice(0, -1), `${good}x`, `tl_x_${good.slice(5)}`, `Bearer ${good}`, '', 'tl__abc', good.replace('tl_', 'tk_')]) {
      expect(parseToken(bad)).toBeNull()
    }
  })
  test('an id spelled with leading zeros does not parse: one token, one spelling', () => {
    const secret = generateSecret()
    for (const bad of [`tl_07_${secret}`, `tl_0001_${secret}`, `tl_0_${secret}`]) expect(parseToken(bad)).toBeNull()
    expect(parseToken(`tl_10_${secret}`)).toEqual({ id: 10, secret })
  })
  test('only the right secret matches the stored hash', () => {
    const secret = generateSecret()
    const stored = hashSecret(secret)
    expect(secretMatches(secret, stored)).toBe(true)
    expect(secretMatches(generateSecret(), stored)).toBe(false)
    expect(secretMatches(secret, stored.subarray(0, 16))).toBe(false)
  })
  test('tokens are redacted from text, keeping the id for debugging', () => {
    const token = formatToken(3, generateSecret())
    expect(redactTokens(`auth failed for ${token}!`)).toBe('auth failed for tl_3_[redacted]!')
  })
})
