/**
 * HTTP load generator, run as its own process (never inside the process under
 * test). fetch keeps connections alive, so `concurrency` workers reuse
 * `concurrency` connections. Three shapes:
 * - closed loop: each worker sends its next request when the last one answers;
 * - open loop (`rate`): requests leave on a fixed schedule whatever the answers,
 *   and latency counts from the scheduled time, so a stall is not hidden;
 * - fixed count (`count`): exactly that many requests (to fill a backlog).
 */
import { Histogram } from './histogram'
import { fail, job, reply } from './child-runtime'

export interface HttpJob {
  url: string
  method: 'GET' | 'POST'
  body?: unknown
  concurrency: number
  warmupMs: number
  durationMs: number
  rate?: number
  count?: number
}

const j = job<HttpJob>()
const init: RequestInit = {
  method: j.method,
  keepalive: true,
  ...(j.body === undefined ? {} : { body: JSON.stringify(j.body), headers: { 'content-type': 'application/json' } }),
}

const hist = new Histogram()
const statuses: Record<string, number> = {}
let measuring = false
let measured = 0
let measuredOk = 0
let firstError: string | null = null

async function once(startedAt: number): Promise<void> {
  let status: string
  try {
    const res = await fetch(j.url, init)
    await res.arrayBuffer()
    status = String(res.status)
  } catch (e) {
    status = 'network-error'
    firstError ??= (e as Error).message
  }
  statuses[status] = (statuses[status] ?? 0) + 1
  if (measuring) {
    hist.record(performance.now() - startedAt)
    measured++
    if (status.startsWith('2')) measuredOk++
  }
}

async function closedLoop(until: () => boolean) {
  await Promise.all(Array.from({ length: j.concurrency }, async () => {
    while (!until()) await once(performance.now())
  }))
}

async function openLoop(rate: number, durationMs: number) {
  const start = performance.now()
  const inflight = new Set<Promise<void>>()
  let sent = 0
  while (performance.now() - start < durationMs) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate)
    for (; sent < due; sent++) {
      const scheduled = start + (sent / rate) * 1000
      const p = once(scheduled).finally(() => inflight.delete(p))
      inflight.add(p)
    }
    await Bun.sleep(1)
  }
  await Promise.all(inflight)
}

async function fixedCount(count: number) {
  let next = 0
  await Promise.all(Array.from({ length: j.concurrency }, async () => {
    while (next < count) {
      next++
      await once(performance.now())
    }
  }))
}

async function main() {
  let elapsedMs: number
  if (j.count !== undefined) {
    measuring = true
    const t0 = performance.now()
    await fixedCount(j.count)
    elapsedMs = performance.now() - t0
  } else if (j.rate !== undefined) {
    measuring = true
    const t0 = performance.now()
    await openLoop(j.rate, j.durationMs)
    elapsedMs = performance.now() - t0
  } else {
    // Warm up (JIT, connections, Postgres caches), then measure a fixed window.
    let stop = performance.now() + j.warmupMs
    let phase: 'warmup' | 'measure' = 'warmup'
    let t0 = 0
    const switcher = setTimeout(() => {
      phase = 'measure'
      measuring = true
      t0 = performance.now()
      stop = t0 + j.durationMs
    }, j.warmupMs)
    await closedLoop(() => phase === 'measure' && performance.now() >= stop)
    clearTimeout(switcher)
    // Requests that were in flight at the end still count: the window ends when the last answers.
    elapsedMs = performance.now() - t0
  }
  const ok = Object.entries(statuses).filter(([s]) => s.startsWith('2')).reduce((n, [, c]) => n + c, 0)
  reply({ type: 'result', requests: measured, ok: measuredOk, elapsedMs, latency: hist.toJSON(), statuses, created: ok, firstError })
  setTimeout(() => process.exit(0), 50)
}

main().catch(fail)
