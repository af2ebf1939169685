/**
 * Reads the markdown CPU profiles Bun writes (`bun --cpu-prof-md`): their
 * "Hot Functions (Self Time)" table, as milliseconds of self time per
 * function, and the difference of two (a loaded run less a start-up-only
 * run), so a profile says where the load's CPU went, not the start-up's.
 */

/** Self time of one function (name and location, as the profile spells them). */
export interface HotFunction {
  fn: string
  location: string
  selfMs: number
}

/** A role's profile under load: its hottest functions, and its self time by package. */
export interface ProfileSummary {
  /** Self time in the profile, less the start-up run's. */
  totalMs: number
  top: (HotFunction & { share: number })[]
  packages: { name: string; selfMs: number; share: number }[]
}

const toMs = (s: string): number => {
  const m = /^([\d.]+)(us|ms|s)$/.exec(s.trim())
  if (!m) return 0
  const v = Number(m[1])
  return m[2] === 's' ? v * 1000 : m[2] === 'us' ? v / 1000 : v
}
const unquote = (s: string) => s.trim().replace(/^`|`$/g, '')

/** The self-time table of one profile. */
export function parseHotFunctions(markdown: string): HotFunction[] {
  const start = markdown.indexOf('## Hot Functions (Self Time)')
  if (start < 0) return []
  const end = markdown.indexOf('\n## ', start + 1)
  const out: HotFunction[] = []
  for (const line of markdown.slice(start, end < 0 ? undefined : end).split('\n')) {
    const cells = line.split('|').slice(1, -1)
    if (cells.length !== 6 || !/^[\d.]+%$/.test(cells[0]!.trim())) continue
    out.push({ fn: unquote(cells[4]!), location: unquote(cells[5]!), selfMs: toMs(cells[1]!) })
  }
  return out
}

/** Where a location belongs: our source, a package, or Bun's own code. */
export function packageOf(location: string, root: string): string {
  const file = location.replace(/:\d+$/, '')
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)
  if (nm) return nm[1]!
  if (file.startsWith(`${root}/src/`)) return `src/${file.slice(root.length + 5).split('/')[0]}`
  if (file.startsWith(root)) return file.slice(root.length + 1)
  if (file === '[native code]') return 'native code (Bun, JSC)'
  if (/^(internal:|node:|bun:)/.test(file)) return 'Bun runtime (internal:, node:)'
  return file || 'unknown'
}

/** `loaded` less `startup`, per function; what remains summarised, the largest first. */
export function summarise(loaded: HotFunction[], startup: HotFunction[], root: string, topN = 12): ProfileSummary {
  const key = (h: HotFunction) => `${h.fn}\u0000${h.location}`
  const before = new Map(startup.map((h) => [key(h), h.selfMs]))
  const rows = loaded
    .map((h) => ({ ...h, selfMs: Math.max(0, h.selfMs - (before.get(key(h)) ?? 0)) }))
    .filter((h) => h.selfMs > 0)
    .sort((a, b) => b.selfMs - a.selfMs)
  const totalMs = rows.reduce((s, h) => s + h.selfMs, 0)
  const share = (ms: number) => (totalMs > 0 ? ms / totalMs : 0)
  const byPackage = new Map<string, number>()
  for (const h of rows) {
    const p = packageOf(h.location, root)
    byPackage.set(p, (byPackage.get(p) ?? 0) + h.selfMs)
  }
  return {
    totalMs: Math.round(totalMs),
    top: rows.slice(0, topN).map((h) => ({ ...h, selfMs: Math.round(h.selfMs * 10) / 10, share: share(h.selfMs) })),
    packages: [...byPackage]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([name, ms]) => ({ name, selfMs: Math.round(ms), share: share(ms) })),
  }
}
