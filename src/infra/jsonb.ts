/**
 * What Postgres can store: text and jsonb refuse NUL, and jsonb refuses a
 * lone surrogate (half of a UTF-16 pair). Values a handler produces (its
 * result, its error, a progress message) are made storable here, so a write
 * never fails on them: a write that fails on its data would fail every time.
 */

/** The text with NUL and lone surrogates replaced by U+FFFD. */
export const storableText = (s: string): string => s.replaceAll('\0', '\uFFFD').toWellFormed()

/** At most `max` UTF-16 units of storable text, never ending in half a pair. */
export const storablePrefix = (s: string, max: number): string => storableText(s.length > max ? s.slice(0, max) : s)

const needsCleaning = (s: string) => s.includes('\0') || !s.isWellFormed()

/**
 * The value as JSON would carry it (toJSON applied, functions and undefined
 * dropped), with every string and key storable; or why it cannot be JSON at
 * all (a BigInt, a cycle).
 */
export function toStorableJson(value: unknown): { ok: true; json: string } | { ok: false; error: string } {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) }
  }
  if (text === undefined) return { ok: true, json: 'null' }
  // Most results need nothing: only a string with NUL or a lone surrogate escapes as \u0000 or \udXXX.
  if (!/\\u(0000|d[89a-f])/i.test(text)) return { ok: true, json: text }
  const cleaned: unknown = JSON.parse(text, (_key, v: unknown) => {
    if (typeof v === 'string') return storableText(v)
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).some(needsCleaning)) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [storableText(k), x]))
    }
    return v
  })
  return { ok: true, json: JSON.stringify(cleaned) }
}
