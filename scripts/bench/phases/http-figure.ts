import { Histogram, type HistogramData } from '../histogram'
import { round, runLoad, type HttpFigure, type WindowCpu } from '../context'
import type { HttpJob } from '../load-http'

export interface HttpResult {
  requests: number
  ok: number
  elapsedMs: number
  latency: HistogramData
  statuses: Record<string, number>
  created: number
  firstError: string | null
}

/**
 * One run of the HTTP load process, as requests/s of successful answers and
 * their latency; with `cpu`, the cores busy over its window (a closed loop's).
 */
export async function httpLoad(name: string, job: HttpJob, cpu?: WindowCpu): Promise<{ figure: HttpFigure; raw: HttpResult; cores?: Record<string, number> }> {
  const { result: raw, cores } = await runLoad<HttpResult>(name, 'load-http.ts', job, undefined, cpu)
  const lat = Histogram.from([raw.latency]).summary()
  const figure: HttpFigure = {
    ...lat,
    perSecond: round(raw.ok / (raw.elapsedMs / 1000)),
    requests: raw.requests,
    errors: raw.requests - raw.ok,
  }
  if (figure.errors > 0)
    console.error(`  ${name}: ${figure.errors} failed requests (${JSON.stringify(raw.statuses)}${raw.firstError ? `; ${raw.firstError}` : ''})`)
  return { figure, raw, cores }
}
