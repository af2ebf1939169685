import { readdirSync, readFileSync } from 'node:fs'

/** Resident memory of a process in bytes (VmRSS), or null once it has exited. */
export function rssBytes(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : null
  } catch {
    return null
  }
}

/** Samples a process's RSS on an interval; peak and the series are kept for "flat" checks. */
export function sampleRss(pid: number, everyMs = 100) {
  const samples: { at: number; rss: number }[] = []
  const take = () => {
    const rss = rssBytes(pid)
    if (rss !== null) samples.push({ at: performance.now(), rss })
  }
  take()
  const timer = setInterval(take, everyMs)
  return {
    samples,
    stop() {
      clearInterval(timer)
      take()
      return { peak: Math.max(0, ...samples.map((s) => s.rss)), samples }
    },
  }
}

const TICKS_PER_SECOND = 100 // USER_HZ; fixed at 100 on Linux

/** User+system CPU seconds a process has used so far (utime + stime from /proc/<pid>/stat). */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name may hold spaces, so count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
  } catch {
    return 0
  }
}

/**
 * How many times a process has gone to sleep and been woken so far: its
 * threads' voluntary context switches. Each wake of a process costs CPU of
 * its own beside the work it wakes for, so wakes per task say how well the
 * work is batched.
 */
function wakeCount(pid: number): number {
  let n = 0
  try {
    for (const thread of readdirSync(`/proc/${pid}/task`)) {
      const m = /^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/task/${thread}/status`, 'utf8'))
      n += Number(m?.[1] ?? 0)
    }
  } catch {
    // exited while we looked
  }
  return n
}

/** Pids whose command name is one of names: Postgres backends and Redis are shared, not ours. */
function pidsByName(names: string[]): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (names.includes(readFileSync(`/proc/${entry}/comm`, 'utf8').trim())) out.push(Number(entry))
    } catch {
      // exited while we looked
    }
  }
  return out
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineBusySeconds(): number {
  const [, ...v] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/)
  const n = v.map(Number)
  // user nice system idle iowait irq softirq steal: everything but idle and iowait is busy.
  return (n[0]! + n[1]! + n[2]! + n[5]! + n[6]! + n[7]!) / TICKS_PER_SECOND
}

/** 1-minute load average: other work on a shared machine shows up here. */
export const loadAverage = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0])

/**
 * CPU use of named groups of processes over an interval, in cores (1.0 = one
 * core busy), and their wakes per second (wakeCount), read after stop() from
 * `wakes`. Shows which process saturates the two cores during a phase.
 * Processes that exit during the interval are not counted. postgres and redis
 * are every process of that name unless the caller names their pids (a
 * phase that knows which redis-server processes are its own).
 */
export function measureCpu(groups: Record<string, () => number[]>) {
  const external: Record<string, () => number[]> = { postgres: () => pidsByName(['postgres']), redis: () => pidsByName(['redis-server']) }
  const all: Record<string, () => number[]> = { ...groups }
  for (const [name, pids] of Object.entries(external)) all[name] ??= pids
  type Used = { cpu: number; wakes: number }
  const read = () => {
    const out = new Map<string, Map<number, Used>>()
    for (const [name, pids] of Object.entries(all)) out.set(name, new Map(pids().map((p) => [p, { cpu: cpuSeconds(p), wakes: wakeCount(p) }])))
    return out
  }
  const before = read()
  const machineBefore = machineBusySeconds()
  const t0 = performance.now()
  const perSecond = (n: number, seconds: number) => Math.round((n / seconds) * 100) / 100
  const wakes: Record<string, number> = {}
  return {
    /** Wakes per second of each group over the interval, once stop() was called. */
    wakes,
    stop(): Record<string, number> {
      const after = read()
      const seconds = (performance.now() - t0) / 1000
      const result: Record<string, number> = {}
      for (const [name, pids] of after) {
        let used = 0
        let woken = 0
        for (const [pid, now] of pids) {
          const then = before.get(name)?.get(pid)
          used += now.cpu - (then?.cpu ?? 0)
          // A thread that exited meanwhile takes its count with it: a process never counts below nothing.
          woken += Math.max(0, now.wakes - (then?.wakes ?? 0))
        }
        result[name] = perSecond(used, seconds)
        wakes[name] = Math.round(woken / seconds)
      }
      // The whole machine, so work that is not ours (other users of the shared services) is visible.
      result.machine = perSecond(machineBusySeconds() - machineBefore, seconds)
      return result
    },
  }
}
