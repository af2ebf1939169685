const durationUnits = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
/**
 * A duration as people write it, `7d`, `12h`, `30m`, `45s`, `500ms`, or a bare
 * number of milliseconds; `0` or `off` is none. Returns milliseconds (0 for
 * none), or undefined when the text is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  const t = text.trim().toLowerCase()
  if (t === 'off') return 0
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(t)
  if (!m) return undefined
  const ms = Number(m[1]) * durationUnits[(m[2] ?? 'ms') as keyof typeof durationUnits]
  return Number.isSafeInteger(ms) ? ms : undefined
}
