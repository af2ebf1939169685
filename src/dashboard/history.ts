/// <reference lib="dom" />
import { ApiError, api, paramOfNext } from './api'
import { byId, formatTime, h, percent, statusBadge } from './dom'
import type { Task, TaskEventMessage } from './types'

/** The most changes the dialog loads: a task's whole history can be far longer than anyone reads. */
const HISTORY_SHOWN = 500

/**
 * A task's history in a dialog: its newest changes loaded from GET
 * /api/tasks/:id/events/, then extended live from the feed while it stays open.
 */
export function setupHistory(getTask: (id: number) => Task | undefined) {
  const dialog = byId<HTMLDialogElement>('history')
  const title = byId('history-title')
  const summary = byId('history-summary')
  const list = byId<HTMLTableSectionElement>('history-events')
  const status = byId('history-status')
  let openId: number | null = null
  let lastSeq = 0
  let loading = false
  let buffered: TaskEventMessage[] = []

  byId('history-close').addEventListener('click', () => dialog.close())
  // A click on the backdrop (the dialog element itself, outside its content) closes it.
  dialog.addEventListener('click', (e) => {
    if (e.target === dialog) dialog.close()
  })
  dialog.addEventListener('close', () => {
    openId = null
  })

  const detailText = (d: unknown) => (d === null || d === undefined ? '' : JSON.stringify(d))

  function row(e: TaskEventMessage) {
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

  function append(e: TaskEventMessage) {
    if (e.seq <= lastSeq) return
    lastSeq = e.seq
    list.append(row(e))
  }

  /**
   * Appends the newest changes (about HISTORY_SHOWN), a page at a time from
   * just before them, following `next`; false if another task was opened meanwhile.
   */
  async function loadRecent(id: number): Promise<boolean> {
    const seq = getTask(id)?.seq ?? (await api.getTask(id)).seq
    for (let after: string | null = String(Math.max(0, seq - HISTORY_SHOWN)); after !== null; ) {
      const page = await api.taskEvents(id, Number(after), HISTORY_SHOWN)
      if (openId !== id) return false
      for (const e of page.results) append(e)
      after = paramOfNext(page.next, 'after_seq')
    }
    return true
  }

  function loadedText() {
    const shown = list.childElementCount
    const whole = `${shown} change${shown === 1 ? '' : 's'}, oldest first`
    const first = Number(list.firstElementChild?.getAttribute('data-seq') ?? 1)
    return `${first > 1 ? `The latest ${shown} of ${lastSeq} changes, oldest first` : whole}; new ones appear as they happen.`
  }

  function renderSummary(t: Task | undefined, id: number) {
    title.textContent = t ? `#${id} ${t.title}` : `Task #${id}`
    if (!t) return summary.replaceChildren()
    const item = (label: string, value: Node | string) => [h('dt', {}, label), h('dd', {}, value)]
    summary.replaceChildren(
      ...item('Status', statusBadge(t.status)),
      ...item('Type', t.type),
      ...item('Attempts', `${t.attempts} of ${t.max_attempts}`),
      ...item('Payload', h('code', {}, JSON.stringify(t.payload))),
      ...(t.result !== null ? item('Result', h('code', {}, JSON.stringify(t.result))) : []),
      ...(t.error ? item('Error', t.error) : []),
    )
  }

  return {
    async open(id: number) {
      openId = id
      lastSeq = 0
      buffered = []
      loading = true
      list.replaceChildren()
      renderSummary(getTask(id), id)
      status.textContent = 'Loading history…'
      if (!dialog.open) dialog.showModal()
      try {
        if (!(await loadRecent(id))) return
        for (const e of buffered) append(e)
        status.textContent = loadedText()
      } catch (err) {
        if (openId !== id) return
        status.textContent = err instanceof ApiError ? `Could not load the history: ${err.message}` : 'Could not load the history.'
      } finally {
        if (openId === id) loading = false
      }
    },
    /** A fresher copy of a task arrived (over HTTP): keep the summary current. */
    onTask(t: Task) {
      if (t.id === openId) renderSummary(t, t.id)
    },
    /** Every feed change passes here; only the open task's are kept. */
    onChange(e: TaskEventMessage) {
      if (e.task_id !== openId) return
      if (loading) buffered.push(e)
      else append(e)
      renderSummary(getTask(e.task_id), e.task_id)
    },
  }
}
