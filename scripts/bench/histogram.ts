/**
 * A latency histogram with 1% relative precision and bounded memory, so a load
 * process can record millions of samples and send them to the orchestrator as
 * a few hundred (bucket, count) pairs that merge exactly.
 */
const GROWTH = Math.log(1.01)
/** Values below this (in ms) share bucket 0: finer than the clocks we compare. */
const FLOOR_MS = 0.001

export interface HistogramData {
  buckets: [number, number][]
  count: number
  max: number
  sum: number
}

export class Histogram {
  private counts = new Map<number, number>()
  count = 0
  max = 0
  sum = 0

  record(ms: number) {
    const v = Math.max(ms, FLOOR_MS)
    const b = Math.floor(Math.log(v / FLOOR_MS) / GROWTH)
    this.counts.set(b, (this.counts.get(b) ?? 0) + 1)
    this.count++
    this.sum += v
    if (v > this.max) this.max = v
  }

  merge(d: HistogramData): this {
    for (const [b, n] of d.buckets) this.counts.set(b, (this.counts.get(b) ?? 0) + n)
    this.count += d.count
    this.sum += d.sum
    if (d.max > this.max) this.max = d.max
    return this
  }

  /** The upper edge of the bucket holding the q-th quantile (never under-reports). */
  quantile(q: number): number | null {
    if (this.count === 0) return null
    const rank = Math.max(1, Math.ceil(q * this.count))
    let seen = 0
    for (const b of [...this.counts.keys()].sort((x, y) => x - y)) {
      seen += this.counts.get(b)!
      if (seen >= rank) return Math.min(this.max, FLOOR_MS * Math.exp((b + 1) * GROWTH))
    }
    return this.max
  }

  summary() {
    return {
      count: this.count,
      p50: this.quantile(0.5),
      p99: this.quantile(0.99),
      max: this.count ? this.max : null,
      mean: this.count ? this.sum / this.count : null,
    }
  }

  toJSON(): HistogramData {
    return { buckets: [...this.counts.entries()], count: this.count, max: this.max, sum: this.sum }
  }

  static from(parts: HistogramData[]): Histogram {
    const h = new Histogram()
    for (const p of parts) h.merge(p)
    return h
  }
}

export type LatencySummary = ReturnType<Histogram['summary']>
