/// <reference lib="dom" />
import { eventPages } from '../client/event-pages'
import { ApiError, api } from './api'
import { byId, formatTime, h, percent, seconds, statusBadge } from './dom'
import type { Task, TaskEventMessage } from './types'

/** The most changes the dialog loads: a task's whole history can be far longer than anyone reads. */
const HISTORY_SHOWN = 500

/**
 * The task the dialog shows. Opening a task replaces it whole, so a load that
 * finishes after another task was opened (or the dialog closed) sees it is
 * stale with one identity check.
 */
interface Showing {
  id: number
  lastSeq: number
  /** Every change shown, oldest first: the attempts are read from them. */
  events: TaskEventMessage[]
  /** While the first pages load, feed changes wait in `buffered`, then go through the same dedupe. */
  loading: boolean
  buffered: TaskEventMessage[]
}

const detailText = (d: unknown) => (d === null || d === undefined ? '' : JSON.stringify(d))

function eventRow(e: TaskEventMessage) {
  return h(
    'tr',
    { 'data-seq': e.seq },
    h('td', { class: 'num' }, e.seq),
    h('td', {}, h('time', { datetime: e.at }, formatTime(e.at))),
    h('td', {}, statusBadge(e.status)),
    h('td', { class: 'num' }, percent(e.progress)),
    h('td', { class: 'detail' }, h('code', {}, detailText(e.detail))),
  )
}

function summaryItems(t: Task): Node[] {
  const item = (label: string, value: Node | string) => [h('dt', {}, label), h('dd', {}, value)]
  return [
    ...item('Status', statusBadge(t.status)),
    ...item('Type', t.type),
    ...item('Attempts', `${t.attempts} of ${t.max_attempts}`),
    ...item('Payload', h('code', {}, JSON.stringify(t.payload))),
    ...(t.result !== null ? item('Result', h('code', {}, JSON.stringify(t.result))) : []),
    ...(t.error ? item('Error', t.error) : []),
  ]
}

/** One attempt, from its PROCESSING change to the change that ended it (none yet: still running). */
interface Attempt {
  attempt: number
  worker?: string
  startedAt: string
  endedAt?: string
  outcome?: string
  error?: string
  stack?: string
}

const field = (d: unknown, k: string) => (d && typeof d === 'object' ? (d as Record<string, unknown>)[k] : undefined)

/** The attempts in a task's changes: each claim (with its attempt and worker) and what ended it. */
export function attemptsOf(events: readonly TaskEventMessage[]): Attempt[] {
  const out: Attempt[] = []
  for (const [i, e] of events.entries()) {
    const attempt = field(e.detail, 'attempt')
    if (e.status !== 'PROCESSING' || typeof attempt !== 'number') continue
    const end = events.slice(i + 1).find((x) => x.status !== 'PROCESSING')
    const error = field(end?.detail, 'error')
    const stack = field(end?.detail, 'stack')
    out.push({
      attempt,
      worker: typeof field(e.detail, 'worker') === 'string' ? (field(e.detail, 'worker') as string) : undefined,
      startedAt: e.at,
      endedAt: end?.at,
      outcome: end?.status,
      error: typeof error === 'string' ? error : undefined,
      stack: typeof stack === 'string' ? stack : undefined,
    })
  }
  return out
}

function attemptItem(a: Attempt) {
  const took = a.endedAt ? seconds(Date.parse(a.endedAt) - Date.parse(a.startedAt)) : 'running'
  return h(
    'li',
    { 'data-attempt': a.attempt },
    h('strong', {}, `Attempt ${a.attempt}`),
    ` on ${a.worker ?? 'a worker'}: ${took}`,
    a.outcome ? ' → ' : null,
    a.outcome ? statusBadge(a.outcome) : null,
    a.error ? h('p', { class: 'attempt-error' }, a.error) : null,
    a.stack ? h('pre', { class: 'attempt-stack' }, a.stack) : null,
  )
}

function loadedText(list: HTMLElement, lastSeq: number) {
  const shown = list.childElementCount
  const whole = `${shown} change${shown === 1 ? '' : 's'}, oldest first`
  const first = Number(list.firstElementChild?.getAttribute('data-seq') ?? 1)
  return `${first > 1 ? `The latest ${shown} of ${lastSeq} changes, oldest first` : whole}; new ones appear as they happen.`
}

/**
 * A task's history in a dialog: its newest changes loaded from GET
 * /api/tasks/:id/events/, then extended live from the feed while it stays open.
 */
export class TaskHistory {
  private readonly dialog = byId<HTMLDialogElement>('history')
  private readonly title = byId('history-title')
  private readonly summary = byId('history-summary')
  private readonly list = byId<HTMLTableSectionElement>('history-events')
  private readonly status = byId('history-status')
  private readonly attempts = byId<HTMLOListElement>('history-attempts')
  private showing: Showing | null = null

  constructor(private readonly getTask: (id: number) => Task | undefined) {
    byId('history-close').addEventListener('click', () => this.dialog.close())
    // A click on the backdrop (the dialog element itself, outside its content) closes it.
    this.dialog.addEventListener('click', (e) => {
      if (e.target === this.dialog) this.dialog.close()
    })
    this.dialog.addEventListener('close', () => {
      this.showing = null
    })
  }

  async open(id: number) {
    const s: Showing = { id, lastSeq: 0, events: [], loading: true, buffered: [] }
    this.showing = s
    this.list.replaceChildren()
    this.attempts.replaceChildren()
    this.renderSummary(this.getTask(id), id)
    this.status.textContent = 'Loading history…'
    if (!this.dialog.open) this.dialog.showModal()
    try {
      if (!(await this.loadRecent(s))) return
      for (const e of s.buffered) this.append(s, e)
      this.status.textContent = loadedText(this.list, s.lastSeq)
    } catch (err) {
      if (this.showing !== s) return
      this.status.textContent = err instanceof ApiError ? `Could not load the history: ${err.message}` : 'Could not load the history.'
    } finally {
      s.loading = false
    }
  }

  /** A fresher copy of a task arrived (over HTTP): keep the summary current. */
  onTask(t: Task) {
    if (t.id === this.showing?.id) this.renderSummary(t, t.id)
  }

  /** Every feed change passes here; only the open task's are kept. */
  onChange(e: TaskEventMessage) {
    const s = this.showing
    if (e.task_id !== s?.id) return
    if (s.loading) s.buffered.push(e)
    else this.append(s, e)
    this.renderSummary(this.getTask(e.task_id), e.task_id)
  }

  /**
   * Appends the newest changes (about HISTORY_SHOWN), a page at a time from
   * just before them, following `next`; false if another task was opened meanwhile.
   */
  private async loadRecent(s: Showing): Promise<boolean> {
    const seq = this.getTask(s.id)?.seq ?? (await api.getTask(s.id)).seq
    const pages = eventPages(Math.max(0, seq - HISTORY_SHOWN), (after) => api.taskEvents(s.id, after, HISTORY_SHOWN))
    for await (const page of pages) {
      if (this.showing !== s) return false
      for (const e of page.results) this.append(s, e)
    }
    return true
  }

  private append(s: Showing, e: TaskEventMessage) {
    if (e.seq <= s.lastSeq) return
    s.lastSeq = e.seq
    s.events.push(e)
    this.list.append(eventRow(e))
    this.attempts.replaceChildren(...attemptsOf(s.events).map(attemptItem))
  }

  private renderSummary(t: Task | undefined, id: number) {
    this.title.textContent = t ? `#${id} ${t.title}` : `Task #${id}`
    if (!t) return this.summary.replaceChildren()
    this.summary.replaceChildren(...summaryItems(t))
  }
}
