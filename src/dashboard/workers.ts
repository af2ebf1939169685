/// <reference lib="dom" />
import { ApiError, api } from './api'
import { byId, formatTime, h, refreshWhileVisible } from './dom'
import type { Worker } from './types'

const REFRESH_MS = 2000

/**
 * The workers card, from their heartbeats (GET /api/workers/, admin): each
 * worker's queues, types, running count and last heartbeat; one that stopped
 * beating turns red (state "dead").
 */
export class WorkerList {
  private readonly rows = byId<HTMLTableSectionElement>('worker-rows')
  private readonly status = byId('workers-status')

  start() {
    refreshWhileVisible(REFRESH_MS, () => this.load())
  }

  async load() {
    try {
      this.render((await api.listWorkers()).results)
    } catch (e) {
      this.rows.replaceChildren()
      this.status.textContent = e instanceof ApiError && e.status === 403 ? 'Workers are shown to admin tokens.' : 'Could not load workers.'
    }
  }

  private render(workers: Worker[]) {
    this.status.textContent = workers.length ? '' : 'No worker has run in the last hour.'
    const now = Date.now()
    this.rows.replaceChildren(
      ...workers.map((w) =>
        h(
          'tr',
          { 'data-worker-id': w.id, 'data-state': w.state },
          h('th', { scope: 'row', title: w.id }, `${w.host}:${w.pid}`),
          h('td', { class: 'worker-state' }, w.state),
          h('td', {}, w.queues ? w.queues.join(', ') : 'all'),
          h('td', { class: 'worker-types' }, w.types.join(', ')),
          h('td', { class: 'num' }, `${w.running}/${w.concurrency}`),
          h(
            'td',
            { title: w.last_seen },
            w.state === 'alive' ? `${Math.max(0, Math.round((now - Date.parse(w.last_seen)) / 1000))} s ago` : formatTime(w.last_seen),
          ),
        ),
      ),
    )
  }
}
