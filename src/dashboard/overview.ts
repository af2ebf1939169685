/// <reference lib="dom" />
import uPlot from 'uplot'
import { api } from './api'
import { byId, h, refreshWhileVisible } from './dom'
import { statuses, type Stats } from './types'

/** Changes on the feed ask for fresh figures at most this often; quiet times still refresh this often. */
const THROTTLE_MS = 1500
const REFRESH_MS = 10_000

/**
 * The overview: every status's count (GET /api/stats/, all the caller may
 * see, not only the rows on the page) and the last hour's completions and
 * failures per minute, drawn with uPlot. Both follow the feed: a change asks
 * for fresh figures, at most every THROTTLE_MS.
 */
const finished = ['COMPLETED', 'FAILED', 'CANCELLED'] as const

export class Overview {
  private readonly counts = byId<HTMLUListElement>('overview-counts')
  private readonly cleanup = byId('overview-cleanup')
  private readonly chartBox = byId('throughput-chart')
  private chart: uPlot | undefined
  private last: Stats | undefined
  private pending: ReturnType<typeof setTimeout> | undefined
  private loading = false
  /** Changes came while hidden or while a read was under way: read again. */
  private stale = false
  /** When the figures shown were read: what "Remove n" removes is what finished before it. */
  private readAt = new Date()

  /** say: how the page tells the user what an action did. */
  constructor(private readonly say: (message: string, kind?: 'info' | 'error') => void) {
    this.cleanup.addEventListener('click', (e) => {
      const button = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-status]')
      if (button) void this.remove(button.dataset.status as (typeof finished)[number], Number(button.dataset.count))
    })
  }

  start() {
    refreshWhileVisible(REFRESH_MS, () => this.load())
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.stale) void this.load()
    })
    window.addEventListener('resize', () => this.chart?.setSize(this.size()))
  }

  /** A task changed somewhere: the figures will be read again shortly (a hidden tab reads them when shown again). */
  changed() {
    if (document.visibilityState !== 'visible') {
      this.stale = true
      return
    }
    this.pending ??= setTimeout(() => {
      this.pending = undefined
      void this.load()
    }, THROTTLE_MS)
  }

  /** The figures last read (the queues card shows their failed counts). */
  get stats(): Stats | undefined {
    return this.last
  }

  async load() {
    if (this.loading) {
      this.stale = true
      return
    }
    this.loading = true
    this.stale = false
    try {
      const readAt = new Date()
      this.last = await api.stats()
      this.readAt = readAt
      this.render(this.last)
    } catch {
      // The banner explains a 401; the next refresh tries again.
    } finally {
      this.loading = false
    }
    if (this.stale) this.changed()
  }

  private render(s: Stats) {
    this.counts.replaceChildren(
      ...statuses.map((st) =>
        h('li', { 'data-status': st }, h('span', { class: `badge badge-${st.toLowerCase()}` }, st), h('strong', { class: 'count' }, s.by_status[st])),
      ),
    )
    this.cleanup.replaceChildren(
      ...finished
        .filter((st) => s.by_status[st] > 0)
        .map((st) =>
          h('button', { type: 'button', class: 'small', 'data-status': st, 'data-count': s.by_status[st] }, `Remove ${s.by_status[st]} ${st.toLowerCase()}`),
        ),
    )
    const xs = s.throughput.map((m) => Date.parse(m.minute) / 1000)
    const data: uPlot.AlignedData = [xs, s.throughput.map((m) => m.completed), s.throughput.map((m) => m.failed)]
    this.chartBox.dataset.completed = String(s.throughput.reduce((n, m) => n + m.completed, 0))
    this.chartBox.dataset.failed = String(s.throughput.reduce((n, m) => n + m.failed, 0))
    if (this.chart) return this.chart.setData(data)
    this.chart = new uPlot(
      {
        ...this.size(),
        series: [{}, { label: 'completed / min', stroke: '#2f855a', fill: 'rgba(47, 133, 90, 0.12)' }, { label: 'failed / min', stroke: '#c53030' }],
        axes: [{}, { size: 40 }],
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      },
      data,
      this.chartBox,
    )
  }

  /** Removes every finished task of this status (the caller's), with its history, after asking with the count. */
  private async remove(status: (typeof finished)[number], count: number) {
    if (!window.confirm(`Remove ${count} ${status} task(s) and their history?`)) return
    try {
      // Only what had finished when the count shown was read: not what finished while the dialog was open.
      this.say(`${(await api.removeFinished(status, this.readAt)).deleted} task(s) removed.`)
    } catch (e) {
      this.say(`Could not remove tasks: ${(e as Error).message}`, 'error')
    }
    await this.load()
  }

  private size() {
    return { width: Math.max(240, this.chartBox.clientWidth), height: 160 }
  }
}
