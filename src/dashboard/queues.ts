/// <reference lib="dom" />
import { ApiError, api } from './api'
import { byId, h, refreshWhileVisible } from './dom'
import type { Queue, Stats } from './types'

const REFRESH_MS = 3000

export interface QueueActions {
  say(message: string, kind?: 'info' | 'error'): void
  /** The figures the overview read last: failed counts per queue. */
  stats(): Stats | undefined
  /** Something changed that the overview and the list should show at once. */
  changed(): void
}

/**
 * The queues card: each queue's ready, waiting, running and failed tasks,
 * pause and resume (admin), and the bulk actions, each confirmed with the
 * number of tasks it will change.
 */
export class QueueTable {
  private readonly rows = byId<HTMLTableSectionElement>('queue-rows')
  private readonly status = byId('queues-status')

  constructor(private readonly actions: QueueActions) {
    this.rows.addEventListener('click', (e) => {
      const button = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-action]')
      const name = button?.closest<HTMLTableRowElement>('tr')?.dataset.queue
      if (button && name !== undefined) void this.act(button.dataset.action!, name, Number(button.dataset.count ?? 0))
    })
  }

  start() {
    refreshWhileVisible(REFRESH_MS, () => this.load())
  }

  async load() {
    try {
      this.render((await api.listQueues()).results)
    } catch {
      this.status.textContent = 'Could not load queues.'
    }
  }

  private render(queues: Queue[]) {
    const failed = this.actions.stats()?.by_queue ?? {}
    const names = [...new Set([...queues.map((q) => q.name), ...Object.keys(failed).filter((n) => failed[n]!.FAILED > 0)])].sort()
    const byName = new Map(queues.map((q) => [q.name, q]))
    this.status.textContent = names.length ? '' : 'No queue has tasks waiting, running or failed.'
    this.rows.replaceChildren(
      ...names.map((name) => {
        const q = byName.get(name) ?? { name, paused: false, ready: 0, waiting: 0, running: 0 }
        const nFailed = failed[name]?.FAILED ?? 0
        const waiting = q.ready + q.waiting
        return h(
          'tr',
          { 'data-queue': name, 'data-paused': String(q.paused) },
          h('th', { scope: 'row' }, name),
          h('td', { class: 'queue-state' }, q.paused ? 'paused' : 'active'),
          h('td', { class: 'num', 'data-label': 'ready' }, q.ready),
          h('td', { class: 'num', 'data-label': 'delayed' }, q.waiting),
          h('td', { class: 'num', 'data-label': 'running' }, q.running),
          h('td', { class: 'num', 'data-label': 'failed' }, nFailed),
          h(
            'td',
            { class: 'queue-actions' },
            h('button', { type: 'button', class: 'small', 'data-action': q.paused ? 'resume' : 'pause' }, q.paused ? 'Resume' : 'Pause'),
            h(
              'button',
              { type: 'button', class: 'small', 'data-action': 'retry', 'data-count': nFailed, disabled: nFailed === 0 },
              `Retry failed (${nFailed})`,
            ),
            h(
              'button',
              { type: 'button', class: 'small', 'data-action': 'cancel', 'data-count': waiting, disabled: waiting === 0 },
              `Cancel pending (${waiting})`,
            ),
          ),
        )
      }),
    )
  }

  private async act(action: string, queue: string, count: number) {
    const question = { retry: `Retry ${count} failed task(s) in queue ${queue}?`, cancel: `Cancel ${count} pending task(s) in queue ${queue}?` }[action]
    if (question && !window.confirm(question)) return
    try {
      if (action === 'pause') await api.pauseQueue(queue)
      else if (action === 'resume') await api.resumeQueue(queue)
      else if (action === 'retry') this.actions.say(`${(await api.retryFailed({ queue })).retried} task(s) retried.`)
      else if (action === 'cancel') this.actions.say(`${(await api.cancelPending({ queue })).cancelled} task(s) cancelled.`)
    } catch (e) {
      const forbidden = e instanceof ApiError && e.status === 403
      this.actions.say(forbidden ? 'Pausing a queue needs an admin token.' : `Could not ${action}: ${(e as Error).message}`, 'error')
    }
    this.actions.changed()
    await this.load()
  }
}
