/// <reference lib="dom" />
import { ApiError, api, cursorFromNext, onUnauthorized, token } from './api'
import { CreateForm } from './create-form'
import { byId } from './dom'
import { showConnection } from './connection'
import { createFeed, type FeedState } from './feed'
import { TaskHistory } from './history'
import { ScheduleList } from './schedules'
import { Overview } from './overview'
import { QueueTable } from './queues'
import { WorkerList } from './workers'
import { TaskStore, type ListFilter } from './store'
import { createTaskFetcher } from './task-fetcher'
import { renderCounts, TaskTable } from './table'
import { canCancel, canRetry, statuses, type Task, type TaskEventMessage, type TaskStatus } from './types'

const PAGE_SIZE = 25
/** Tasks the feed mentions that the page must fetch are fetched this many at a time. */
const MAX_PARALLEL_FETCHES = 4
/** A status change's other fields (attempts, error, result) are refreshed over HTTP after this pause, merged into one request per task. */
const REFRESH_DELAY_MS = 250
const LIST_RETRY_MS = 3000

const store = new TaskStore()
const tbody = byId<HTMLTableSectionElement>('task-rows')
const filterSelect = byId<HTMLSelectElement>('status-filter')
const queueSelect = byId<HTMLSelectElement>('queue-filter')
const typeSelect = byId<HTMLSelectElement>('type-filter')
const titleSearch = byId<HTMLInputElement>('title-search')
/** The filter the controls say now. */
const chosenFilter = (): ListFilter => ({
  status: filterSelect.value as TaskStatus | '',
  queue: queueSelect.value,
  type: typeSelect.value,
  q: titleSearch.value.trim(),
})
const newerButton = byId<HTMLButtonElement>('page-newer')
const olderButton = byId<HTMLButtonElement>('page-older')
const pageLabel = byId('page-label')
/** The cursor each page of the list was read from, newest page first: null for the first, which is live. */
let pageCursors: (string | null)[] = [null]
const listStatus = byId('list-status')
const notice = byId('notice')
const authBanner = byId('auth-banner')

// ---------- messages ----------

let noticeTimer: ReturnType<typeof setTimeout> | undefined
/** One line of feedback for actions (a 409 on cancel, a network error); errors stay until the next message. */
function say(message: string, kind: 'info' | 'error' = 'info') {
  notice.textContent = message
  notice.dataset.kind = kind
  notice.hidden = false
  clearTimeout(noticeTimer)
  if (kind === 'info') noticeTimer = setTimeout(() => (notice.hidden = true), 4000)
}

function showAuthNeeded(needed: boolean) {
  authBanner.hidden = !needed
  if (needed) byId('token-input').focus()
}
onUnauthorized(() => showAuthNeeded(true))

// ---------- rendering ----------

let renderQueued = false
let quietRender = true
/** Coalesces any number of changes into one render per frame. */
function scheduleRender() {
  if (renderQueued) return
  renderQueued = true
  requestAnimationFrame(() => {
    renderQueued = false
    const rows = store.visible()
    // Rows that arrive with a page are not news; rows that arrive live are highlighted.
    table.render(rows, !quietRender)
    quietRender = false
    renderCounts(byId('counts'), byId('counts-caption'), rows, store.nextCursor !== null)
    olderButton.hidden = store.nextCursor === null
    newerButton.hidden = pageCursors.length === 1
    pageLabel.textContent = pageCursors.length > 1 || store.nextCursor !== null ? `Page ${pageCursors.length}` : ''
    const empty = byId('empty')
    empty.hidden = rows.length > 0 || !listLoaded
    const { status, queue, type, q } = store.filter
    empty.textContent =
      status || queue || type || q
        ? `No ${status ? `${status} ` : ''}${type ? `${type} ` : ''}tasks${queue ? ` in queue ${queue}` : ''}${q ? ` with "${q}" in the title` : ''}.`
        : 'No tasks yet: create one with the form.'
  })
}

const history = new TaskHistory((id) => store.tasks.get(id))

const table = new TaskTable(tbody, {
  open: (id) => void history.open(id),
  // Cancelling cannot be undone (a retry starts the attempts over): asked first.
  cancel: (id, button) => {
    if (window.confirm(`Cancel task #${id}${store.tasks.get(id) ? `, "${store.tasks.get(id)!.title}"` : ''}?`)) void act(id, button, 'cancel')
  },
  retry: (id, button) => void act(id, button, 'retry'),
})

async function act(id: number, button: HTMLButtonElement, what: 'cancel' | 'retry') {
  button.disabled = true
  try {
    const task = what === 'cancel' ? await api.cancelTask(id) : await api.retryTask(id)
    acceptTask(task)
    say(what === 'cancel' ? `Task #${id} cancelled.` : `Task #${id} queued again.`)
  } catch (err) {
    say(err instanceof ApiError ? `Could not ${what} task #${id}: ${err.message}` : `Could not ${what} task #${id}.`, 'error')
    // The row may be out of date (that is usually why the API said 409): fetch it.
    void refresh(id)
    const t = store.tasks.get(id)
    if (t) button.disabled = !(what === 'cancel' ? canCancel(t.status) : canRetry(t.status))
  }
}

function acceptTask(t: Task) {
  if (store.upsert(t)) {
    history.onTask(t)
    scheduleRender()
  }
}

// ---------- the list ----------

let listLoaded = false
let listLoading = false
/** Bumped on every reload, so an answer to an older request (another filter) is dropped. */
let listGeneration = 0
/** Feed changes that arrive while the first page loads wait here, then go through the same merge. */
let pendingChanges: TaskEventMessage[] | null = []

async function loadFirstPage() {
  const generation = ++listGeneration
  pendingChanges ??= []
  listLoading = true
  listStatus.textContent = 'Loading…'
  try {
    const filter = chosenFilter()
    const cursor = pageCursors.at(-1) ?? null
    const page = await api.listTasks({ ...filter, cursor, limit: PAGE_SIZE })
    if (generation !== listGeneration) return
    store.reset(filter, cursor === null ? Infinity : Number(cursor))
    store.addPage(page.results, cursorFromNext(page.next))
    listLoaded = true
    void loadFilterOptions()
    quietRender = true
    listStatus.textContent = ''
    showAuthNeeded(false)
    const waiting = pendingChanges ?? []
    pendingChanges = null
    for (const e of waiting) onChange(e)
  } catch (err) {
    if (generation !== listGeneration) return
    // A 401 is explained once, by the banner; anything else is said here.
    if (err instanceof ApiError && err.status === 401) listStatus.textContent = 'No tasks shown: the API needs a token.'
    else {
      listStatus.textContent = `${err instanceof ApiError ? `Could not load tasks: ${err.message}` : 'Could not load tasks.'} Trying again shortly.`
      // A 503 while Postgres restarts, say: the feed may stay up meanwhile, so nothing else would reload the list.
      setTimeout(() => {
        if (generation === listGeneration) void loadFirstPage()
      }, LIST_RETRY_MS)
    }
    // Live changes cannot be placed without a list; the next successful load replaces them anyway.
    pendingChanges = null
  } finally {
    if (generation === listGeneration) listLoading = false
  }
  scheduleRender()
}

/** Shows another page of the list: the one after this (older), or the one before it (newer). */
function turnPage(older: boolean) {
  if (older && store.nextCursor === null) return
  if (older) pageCursors.push(store.nextCursor)
  else if (pageCursors.length > 1) pageCursors.pop()
  table.clear()
  listLoaded = false
  scheduleRender()
  void loadFirstPage()
}

// ---------- live changes ----------

const fetcher = createTaskFetcher({
  maxParallel: MAX_PARALLEL_FETCHES,
  async load(id) {
    const generation = listGeneration
    // A failure means deleted meanwhile, or the API is away: the feed or the next reload corrects it.
    const t = await api.getTask(id).catch(() => undefined)
    if (!t || generation !== listGeneration) return
    acceptTask(t)
    store.trim()
  },
  release(id, held) {
    for (const e of held) if (store.tasks.has(id)) onChange(e)
  },
})
const refreshTimers = new Map<number, ReturnType<typeof setTimeout>>()

function refresh(id: number) {
  clearTimeout(refreshTimers.get(id))
  const timer = setTimeout(() => {
    refreshTimers.delete(id)
    if (store.tasks.has(id)) fetcher.fetch(id)
  }, REFRESH_DELAY_MS)
  refreshTimers.set(id, timer)
}

function onChange(e: TaskEventMessage) {
  overview.changed()
  if (pendingChanges) return void pendingChanges.push(e)
  const waiting = fetcher.holding(e.task_id)
  if (waiting && !store.tasks.has(e.task_id)) return void waiting.push(e)
  const outcome = store.apply(e)
  if (outcome === 'unknown') {
    // Only tasks inside the loaded range that the filter would show are worth a request.
    if (store.covers(e.task_id) && store.matches(e)) fetcher.fetch(e.task_id)
  } else if (outcome === 'status') refresh(e.task_id)
  if (outcome !== 'stale' && outcome !== 'unknown') scheduleRender()
  history.onChange(e)
}

// ---------- connection ----------

function showState(s: FeedState) {
  showConnection(s)
  if (s.kind === 'offline' && s.reason === 'unauthorized') showAuthNeeded(true)
  // Without a feed the list can still be shown; the next hello reloads it.
  if ((s.kind === 'reconnecting' || s.kind === 'offline') && !listLoaded && !listLoading) void loadFirstPage()
}

const feed = createFeed({
  token: token.get,
  // A fresh feed starts at "now": (re)load the list after it, so no change falls between the two.
  onHello: () => void loadFirstPage(),
  onChange,
  onState: showState,
  isUnauthorized: () => api.isUnauthorized(),
})

// ---------- controls ----------

for (const s of statuses) filterSelect.append(new Option(s.charAt(0) + s.slice(1).toLowerCase(), s))
function onFilterChange() {
  pageCursors = [null]
  table.clear()
  listLoaded = false
  store.reset(chosenFilter())
  scheduleRender()
  void loadFirstPage()
}
filterSelect.addEventListener('change', onFilterChange)
queueSelect.addEventListener('change', onFilterChange)
typeSelect.addEventListener('change', onFilterChange)
// Typing asks again once the typing pauses, not at every key.
let searchTimer: ReturnType<typeof setTimeout> | undefined
titleSearch.addEventListener('input', () => {
  clearTimeout(searchTimer)
  searchTimer = setTimeout(onFilterChange, 300)
})

/**
 * The queue filter offers every queue the API counts (those with active
 * tasks, or paused), those of the tasks on the page, and the one chosen.
 */
async function loadFilterOptions() {
  const [queues, types] = await Promise.all([api.listQueues().catch(() => ({ results: [] })), api.listTaskTypes().catch(() => ({ results: [] }))])
  const onPage = [...store.tasks.values()]
  fillOptions(queueSelect, [...queues.results.map((q) => q.name), ...onPage.map((t) => t.queue)])
  fillOptions(typeSelect, [...types.results.map((t) => t.name), ...onPage.map((t) => t.type)])
}

/** A filter select's options: All, then these names sorted, keeping the one chosen. */
function fillOptions(select: HTMLSelectElement, names: string[]) {
  const chosen = select.value
  const all = new Set([...names, chosen].filter(Boolean))
  select.replaceChildren(new Option('All', ''), ...[...all].sort().map((n) => new Option(n, n)))
  select.value = chosen
}
olderButton.addEventListener('click', () => turnPage(true))
newerButton.addEventListener('click', () => turnPage(false))

const createForm = new CreateForm((task) => {
  acceptTask(task)
  if (![...queueSelect.options].some((o) => o.value === task.queue)) void loadFilterOptions()
  say(`Task #${task.id} created.`)
})

const tokenInput = byId<HTMLInputElement>('token-input')
tokenInput.value = token.get()
byId<HTMLFormElement>('token-form').addEventListener('submit', (e) => {
  e.preventDefault()
  token.set(tokenInput.value.trim())
  showAuthNeeded(false)
  say(token.get() ? 'Token saved for this tab.' : 'Token cleared.')
  // Both channels start over with the new credentials; the feed keeps its cursor.
  feed.restart()
  void loadFirstPage()
  void createForm.types.load()
  void schedules.load()
  void overview.load()
  void queues.load()
  void workers.load()
})

const schedules = new ScheduleList()
const overview = new Overview(say)
const queues = new QueueTable({ say, stats: () => overview.stats, changed: () => overview.changed() })
const workers = new WorkerList()
overview.start()
queues.start()
workers.start()

feed.start()
void createForm.types.load()
schedules.start()
