/**
 * Reads the CPU profiles Bun writes (`bun --cpu-prof`, Chrome's .cpuprofile
 * JSON) as self time per function, and the difference of two (a loaded run
 * less a start-up-only run), so a profile says where the load's CPU went, not
 * the start-up's.
 *
 * Self time is counted in samples, each worth the profile's median sampling
 * interval. Bun's own tables weight a sample by the time since the one before
 * it, and a process that sat idle between two samples (waiting on a socket)
 * hands that whole wait to whatever ran next: a cache hit showed as a quarter
 * of the API's time that way.
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

/** The parts of a .cpuprofile read here. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]
  samples: number[]
  timeDeltas: number[]
}

const median = (values: number[]) => (values.length ? [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]! : 0)

/** Self time per function of one profile: its samples, each worth the median interval between samples. */
export function parseCpuProfile(profile: CpuProfile): HotFunction[] {
  const sampleMs = median(profile.timeDeltas.slice(1)) / 1000
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]))
  const counts = new Map<string, { fn: string; location: string; samples: number }>()
  for (const id of profile.samples) {
    const f = frames.get(id)
    if (!f) continue
    const file = f.url ? f.url.replace(/^file:\/\//, '') : '[native code]'
    const location = f.url && f.lineNumber >= 0 ? `${file}:${f.lineNumber + 1}` : file
    const fn = f.functionName || '(anonymous)'
    const key = `${fn}\u0000${location}`
    const c = counts.get(key) ?? { fn, location, samples: 0 }
    c.samples++
    counts.set(key, c)
  }
  return [...counts.values()].map(({ fn, location, samples }) => ({ fn, location, selfMs: samples * sampleMs })).sort((a, b) => b.selfMs - a.selfMs)
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
