/// <reference lib="dom" />
import { formatTime, h, percent, progressBar, seconds, setProgress, statusBadge } from './dom'
import { canCancel, canRetry, statuses, type Task } from './types'

export interface RowActions {
  open(id: number): void
  cancel(id: number, button: HTMLButtonElement): void
  retry(id: number, button: HTMLButtonElement): void
}

interface Row {
  tr: HTMLTableRowElement
  /** The row's shape when it was last built. */
  shown: string
}

/** What a row shows apart from progress: when this changes the row is rebuilt, otherwise only its bar moves. */
const rowShape = (t: Task) =>
  [t.status, t.title, t.type, t.queue, t.priority, t.attempts, t.max_attempts, t.error ?? '', t.run_after ?? '', t.started_at ?? '', t.finished_at ?? ''].join(
    '\u0000',
  )

/** From its first start to its end; a running task's is still counting. */
const took = (t: Task) =>
  t.started_at && t.finished_at ? seconds(Date.parse(t.finished_at) - Date.parse(t.started_at)) : t.started_at && t.status === 'PROCESSING' ? 'running' : '—'

/** A PENDING task not due yet (delayed, or a retry backing off): when it runs. */
const waitsUntil = (t: Task) => (t.status === 'PENDING' && t.run_after !== null && Date.parse(t.run_after) > Date.now() ? t.run_after : null)

function titleCell(t: Task) {
  return h(
    'td',
    { class: 'col-title', 'data-label': 'Task' },
    h('button', { type: 'button', class: 'link', 'data-action': 'open', title: "Show this task's history" }, t.title),
    h('span', { class: 'type' }, t.type),
  )
}

function progressCell(t: Task) {
  const running = t.status === 'PROCESSING'
  const until = waitsUntil(t)
  return h(
    'td',
    { class: 'col-progress', 'data-label': 'Progress' },
    running ? progressBar(t.progress) : null,
    until
      ? h('span', { class: 'progress-text runs-at', title: until }, `runs at ${formatTime(until)}`)
      : h('span', { class: 'progress-text' }, running || t.status === 'COMPLETED' ? percent(t.progress) : '—'),
  )
}

function actionsCell(t: Task) {
  return h(
    'td',
    { class: 'col-actions' },
    h('button', { type: 'button', class: 'small', 'data-action': 'cancel', disabled: !canCancel(t.status), 'aria-label': `Cancel task ${t.id}` }, 'Cancel'),
    h('button', { type: 'button', class: 'small', 'data-action': 'retry', disabled: !canRetry(t.status), 'aria-label': `Retry task ${t.id}` }, 'Retry'),
  )
}

function buildRow(t: Task): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-task-id': t.id, 'data-status': t.status },
    h('td', { class: 'col-id', 'data-label': 'ID' }, `#${t.id}`),
    titleCell(t),
    h(
      'td',
      { class: 'col-queue', 'data-label': 'Queue' },
      t.queue,
      t.priority === 0 ? null : h('span', { class: 'priority', title: `priority ${t.priority}` }, ` p${t.priority > 0 ? '+' : ''}${t.priority}`),
    ),
    h('td', { class: 'col-status', 'data-label': 'Status' }, statusBadge(t.status)),
    progressCell(t),
    h('td', { class: 'col-attempts', 'data-label': 'Attempts' }, `${t.attempts}/${t.max_attempts}`),
    h('td', { class: 'col-took', 'data-label': 'Took' }, took(t)),
    h('td', { class: 'col-updated', 'data-label': 'Updated' }, h('time', { datetime: t.updated_at }, formatTime(t.updated_at))),
    actionsCell(t),
  )
}

/** Only the bar, its text and the time: what a progress tick changes. */
function updateProgress(tr: HTMLTableRowElement, t: Task) {
  const bar = tr.querySelector<HTMLElement>('[role=progressbar]')
  if (bar) setProgress(bar, t.progress)
  const text = tr.querySelector('.progress-text')
  if (text && t.status === 'PROCESSING') text.textContent = percent(t.progress)
  const time = tr.querySelector('time')
  if (time) {
    time.dateTime = t.updated_at
    time.textContent = formatTime(t.updated_at)
  }
}

function updateRow(row: Row, t: Task) {
  const shape = rowShape(t)
  if (shape === row.shown) return updateProgress(row.tr, t)
  // Same element, new content: keeps the row's place (and any focus) in the table.
  row.tr.replaceChildren(...buildRow(t).childNodes)
  row.tr.dataset.status = t.status
  row.shown = shape
}

/** One listener for every row: rows come and go, the listener stays. */
function onRowClick(e: Event, actions: RowActions) {
  const target = e.target as HTMLElement
  const tr = target.closest<HTMLTableRowElement>('tr[data-task-id]')
  if (!tr) return
  const id = Number(tr.dataset.taskId)
  const button = target.closest<HTMLButtonElement>('button[data-action]')
  if (button?.dataset.action === 'cancel') actions.cancel(id, button)
  else if (button?.dataset.action === 'retry') actions.retry(id, button)
  else actions.open(id) // anywhere else on the row, including the title button
}

/**
 * The task table, updated row by row: a progress tick changes one bar's width
 * instead of rebuilding the table, so the page stays smooth while many tasks run.
 */
export class TaskTable {
  private readonly rows = new Map<number, Row>()

  constructor(
    private readonly tbody: HTMLTableSectionElement,
    actions: RowActions,
  ) {
    tbody.addEventListener('click', (e) => onRowClick(e, actions))
  }

  /** Makes the table show exactly these tasks, in this order, touching only what changed. */
  render(tasks: Task[], highlightNew: boolean) {
    this.removeAllBut(new Set(tasks.map((t) => t.id)))
    let cursor: Element | null = this.tbody.firstElementChild
    for (const t of tasks) {
      const row = this.upsert(t, highlightNew)
      if (row.tr !== cursor) this.tbody.insertBefore(row.tr, cursor)
      else cursor = cursor.nextElementSibling
    }
  }

  /** Forgets every row: after a filter change nothing should flash as new. */
  clear() {
    this.rows.clear()
    this.tbody.replaceChildren()
  }

  private removeAllBut(wanted: Set<number>) {
    for (const [id, row] of this.rows) {
      if (wanted.has(id)) continue
      row.tr.remove()
      this.rows.delete(id)
    }
  }

  private upsert(t: Task, highlightNew: boolean): Row {
    const row = this.rows.get(t.id)
    if (row) {
      updateRow(row, t)
      return row
    }
    const fresh = { tr: buildRow(t), shown: rowShape(t) }
    this.rows.set(t.id, fresh)
    if (highlightNew) fresh.tr.classList.add('fresh')
    return fresh
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
