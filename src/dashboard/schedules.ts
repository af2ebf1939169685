/// <reference lib="dom" />
import { api } from './api'
import { byId, formatTime, h, refreshWhileVisible } from './dom'
import type { Schedule } from './types'

/** Ticks move next runs on without a feed message, so the list is read again this often while the tab is visible. */
const REFRESH_MS = 3000

/** The "Schedules" card: each schedule with its cron and next run, read from GET /api/schedules/. */
export class ScheduleList {
  private readonly list = byId<HTMLUListElement>('schedule-list')
  private readonly status = byId('schedules-status')

  constructor() {
    this.list.addEventListener('click', (e) => {
      const button = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-action]')
      const id = Number(button?.closest<HTMLLIElement>('li')?.dataset.scheduleId)
      if (!button || !id) return
      const act = button.dataset.action === 'pause' ? api.pauseSchedule(id) : api.resumeSchedule(id)
      void act.then(
        () => this.load(),
        () => (this.status.textContent = 'Could not change the schedule.'),
      )
    })
  }

  start() {
    refreshWhileVisible(REFRESH_MS, () => this.load())
  }

  async load() {
    try {
      this.render((await api.listSchedules()).results)
    } catch {
      // A 401 is shown by the banner; anything else says so here and the next refresh tries again.
      this.status.textContent = 'Could not load schedules.'
    }
  }

  private render(schedules: Schedule[]) {
    this.status.textContent = schedules.length ? '' : 'No schedules: create one with POST /api/schedules/ or `taskline schedules create`.'
    this.list.replaceChildren(
      ...schedules.map((s) =>
        h(
          'li',
          { 'data-schedule-id': s.id, 'data-paused': String(s.paused) },
          h('span', { class: 'schedule-name' }, s.name),
          ' ',
          h('code', { class: 'schedule-cron', title: `read in ${s.timezone}` }, s.cron),
          h('span', { class: 'schedule-next', title: s.next_run_at ?? '' }, s.paused || !s.next_run_at ? 'paused' : `next run ${formatTime(s.next_run_at)}`),
          h('button', { type: 'button', class: 'small', 'data-action': s.paused ? 'resume' : 'pause' }, s.paused ? 'Resume' : 'Pause'),
        ),
      ),
    )
  }
}
