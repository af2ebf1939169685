/**
 * HTTP load generator, run as its own process (never inside the process under
 * test). Three shapes:
 * - closed loop: `concurrency` clients, each on a keep-alive connection of its
 *   own (./http1-client), each sending its next request when the last answers;
 * - open loop (`rate`): requests leave on a fixed schedule whatever the answers,
 *   and latency counts from the scheduled time, so a stall is not hidden
 *   (by fetch, whose pool opens as many connections as are in flight);
 * - fixed count (`count`): exactly that many requests from `concurrency`
 *   clients as above (to fill a backlog).
 */
import { Histogram } from './histogram'
import { fail, job, reply } from './child-runtime'
import { bearer, repeatedRequest, type Http1Answer } from './http1-client'
import { dueAt, dueCount } from './open-loop'

export interface HttpJob {
  url: string
  method: 'GET' | 'POST'
  body?: unknown
  concurrency: number
  warmupMs: number
  durationMs: number
  rate?: number
  count?: number
  /** The API token, sent as `Authorization: Bearer`; none for the references. */
  token?: string
}

const j = job<HttpJob>()
const request = repeatedRequest(new URL(j.url), j.method, j.body, bearer(j.token))

const hist = new Histogram()
const statuses: Record<string, number> = {}
let measuring = false
let measured = 0
let measuredOk = 0
let firstError: string | null = null

/** How one request goes out: by fetch (open loop), or on a closed-loop client's own connection. */
type Send = () => Promise<Http1Answer>

async function once(send: Send, startedAt: number): Promise<void> {
  let status: string
  try {
    status = String((await send()).status)
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

/** `concurrency` clients, each on its own connection, each sending its next request when the last one answers. */
async function clients(more: () => boolean) {
  await Promise.all(
    Array.from({ length: j.concurrency }, async () => {
      const send = request.onOwnConnection()
      while (more()) await once(send, performance.now())
      await send.close()
    }),
  )
}

async function openLoop(rate: number, durationMs: number) {
  const start = performance.now()
  const inflight = new Set<Promise<void>>()
  let sent = 0
  while (performance.now() - start < durationMs) {
    const due = dueCount(performance.now() - start, rate)
    for (; sent < due; sent++) {
      const p = once(request.byFetch, dueAt(start, sent, rate)).finally(() => inflight.delete(p))
      inflight.add(p)
    }
    await Bun.sleep(1)
  }
  await Promise.all(inflight)
}

async function fixedCount(count: number) {
  let next = 0
  await clients(() => next++ < count)
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
      reply({ type: 'window', state: 'open' })
      setTimeout(() => reply({ type: 'window', state: 'closed' }), j.durationMs)
    }, j.warmupMs)
    await clients(() => !(phase === 'measure' && performance.now() >= stop))
    clearTimeout(switcher)
    // Requests that were in flight at the end still count: the window ends when the last answers.
    elapsedMs = performance.now() - t0
  }
  const ok = Object.entries(statuses)
    .filter(([s]) => s.startsWith('2'))
    .reduce((n, [, c]) => n + c, 0)
  reply({ type: 'result', requests: measured, ok: measuredOk, elapsedMs, latency: hist.toJSON(), statuses, created: ok, firstError })
  setTimeout(() => process.exit(0), 50)
}

main().catch(fail)
