import type { Db } from '../../infra/db'
import type { Principal } from '../tokens/token'
import { type Stats, type StatusCounts, zeroCounts } from './stats'
import * as repo from './stats.repository'

export interface StatsDeps {
  db: Db
}

/** Completions sampled for run times: bounded, so the answer stays cheap at any rate. */
const RUN_TIME_SAMPLE = 5000
const MINUTE = 60_000

/** The caller's tasks (everyone's for an admin): counts, the last hour's outcomes per minute, run times per type. */
export async function getStats(deps: StatsDeps, who: Principal, now = Date.now()): Promise<Stats> {
  const owner = who.admin ? undefined : who.ownerId
  const since = new Date(Math.floor(now / MINUTE) * MINUTE - 59 * MINUTE)
  const [counts, outcomes, runTime] = await Promise.all([
    repo.countTasks(deps.db, owner),
    repo.outcomesPerMinute(deps.db, since, owner),
    repo.runTimes(deps.db, RUN_TIME_SAMPLE, owner),
  ])
  const byStatus = zeroCounts()
  const byQueue: Record<string, StatusCounts> = {}
  const byType: Record<string, StatusCounts> = {}
  for (const c of counts) {
    const n = Number(c.n)
    byStatus[c.status] += n
    ;(byQueue[c.queue] ??= zeroCounts())[c.status] += n
    ;(byType[c.type] ??= zeroCounts())[c.status] += n
  }
  const perMinute = new Map(outcomes.map((o) => [o.minute.getTime(), o]))
  const throughput = Array.from({ length: 60 }, (_, i) => {
    const minute = since.getTime() + i * MINUTE
    const o = perMinute.get(minute)
    return { minute: new Date(minute).toISOString(), completed: Number(o?.completed ?? 0), failed: Number(o?.failed ?? 0) }
  })
  const run_time = runTime.map((r) => ({ type: r.type, count: Number(r.count), p50_ms: Math.round(r.p50_ms), p95_ms: Math.round(r.p95_ms) }))
  return { by_status: byStatus, by_queue: byQueue, by_type: byType, throughput, run_time }
}
