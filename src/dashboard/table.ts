/// <reference lib="dom" />
import { formatTime, h, percent, progressBar, setProgress, statusBadge } from './dom'
import { canCancel, canRetry, statuses, type Task } from './types'

export interface RowActions {
  open(id: number): void
  cancel(id: number, button: HTMLButtonElement): void
  retry(id: number, button: HTMLButtonElement): void
}

/**
 * The task table, updated row by row: a progress tick changes one bar's width
 * instead of rebuilding the table, so the page stays smooth while many tasks run.
 */
export function createTable(tbody: HTMLTableSectionElement, actions: RowActions) {
  const rows = new Map<number, { tr: HTMLTableRowElement; shown: string }>()

  // One listener for every row: rows come and go, the listener stays.
  tbody.addEventListener('click', (e) => {
    const target = e.target as HTMLElement
    const tr = target.closest<HTMLTableRowElement>('tr[data-task-id]')
    if (!tr) return
    const id = Number(tr.dataset.taskId)
    const button = target.closest<HTMLButtonElement>('button[data-action]')
    if (button?.dataset.action === 'cancel') actions.cancel(id, button)
    else if (button?.dataset.action === 'retry') actions.retry(id, button)
    else actions.open(id) // anywhere else on the row, including the title button
  })

  function build(t: Task): HTMLTableRowElement {
    const running = t.status === 'PROCESSING'
    return h(
      'tr',
      { 'data-task-id': t.id, 'data-status': t.status },
      h('td', { class: 'col-id', 'data-label': 'ID' }, `#${t.id}`),
      h(
        'td',
        { class: 'col-title', 'data-label': 'Task' },
        h('button', { type: 'button', class: 'link', 'data-action': 'open', title: "Show this task's history" }, t.title),
        h('span', { class: 'type' }, t.type),
      ),
      h('td', { class: 'col-status', 'data-label': 'Status' }, statusBadge(t.status)),
      h(
        'td',
        { class: 'col-progress', 'data-label': 'Progress' },
        running ? progressBar(t.progress) : null,
        h('span', { class: 'progress-text' }, running || t.status === 'COMPLETED' ? percent(t.progress) : '—'),
      ),
      h('td', { class: 'col-attempts', 'data-label': 'Attempts' }, `${t.attempts}/${t.max_attempts}`),
      h('td', { class: 'col-updated', 'data-label': 'Updated' }, h('time', { datetime: t.updated_at }, formatTime(t.updated_at))),
      h(
        'td',
        { class: 'col-actions' },
        h('button', { type: 'button', class: 'small', 'data-action': 'cancel', disabled: !canCancel(t.status), 'aria-label': `Cancel task ${t.id}` }, 'Cancel'),
        h('button', { type: 'button', class: 'small', 'data-action': 'retry', disabled: !canRetry(t.status), 'aria-label': `Retry task ${t.id}` }, 'Retry'),
      ),
    )
  }

  /** What a row shows apart from progress: when this changes the row is rebuilt, otherwise only its bar moves. */
  const shape = (t: Task) => [t.status, t.title, t.type, t.attempts, t.max_attempts, t.error ?? ''].join('\u0000')

  function update(entry: { tr: HTMLTableRowElement; shown: string }, t: Task) {
    const s = shape(t)
    if (s !== entry.shown) {
      // Same element, new content: keeps the row's place (and any focus) in the table.
      const fresh = build(t)
      entry.tr.replaceChildren(...fresh.childNodes)
      entry.tr.dataset.status = t.status
      entry.shown = s
      return
    }
    const bar = entry.tr.querySelector<HTMLElement>('[role=progressbar]')
    if (bar) setProgress(bar, t.progress)
    const text = entry.tr.querySelector('.progress-text')
    if (text && t.status === 'PROCESSING') text.textContent = percent(t.progress)
    const time = entry.tr.querySelector('time')
    if (time) {
      time.dateTime = t.updated_at
      time.textContent = formatTime(t.updated_at)
    }
  }

  return {
    /** Makes the table show exactly these tasks, in this order, touching only what changed. */
    render(tasks: Task[], highlightNew: boolean) {
      const wanted = new Set(tasks.map((t) => t.id))
      for (const [id, entry] of rows) {
        if (!wanted.has(id)) {
          entry.tr.remove()
          rows.delete(id)
        }
      }
      let cursor: Element | null = tbody.firstElementChild
      for (const t of tasks) {
        let entry = rows.get(t.id)
        if (!entry) {
          entry = { tr: build(t), shown: shape(t) }
          rows.set(t.id, entry)
          if (highlightNew) entry.tr.classList.add('fresh')
        } else update(entry, t)
        if (entry.tr !== cursor) tbody.insertBefore(entry.tr, cursor)
        else cursor = cursor.nextElementSibling
      }
    },
    /** Forgets every row: after a filter change nothing should flash as new. */
    clear() {
      rows.clear()
      tbody.replaceChildren()
    },
  }
}

/** Counts by status of exactly the tasks in the table, so the numbers never claim more than the page knows. */
export function renderCounts(container: HTMLElement, caption: HTMLElement, tasks: Task[], more: boolean) {
  const counts = new Map<string, number>(statuses.map((s) => [s, 0]))
  for (const t of tasks) counts.set(t.status, (counts.get(t.status) ?? 0) + 1)
  container.replaceChildren(
    ...statuses.map((s) =>
      h(
        'li',
        { class: `count count-${s.toLowerCase()}`, 'data-status': s },
        h('span', { class: 'count-n' }, counts.get(s) ?? 0),
        h('span', { class: 'count-label' }, s),
      ),
    ),
  )
  const n = tasks.length
  caption.textContent = `Status of the ${n} task${n === 1 ? '' : 's'} listed below${more ? ' (older tasks not loaded yet)' : ''}`
}
