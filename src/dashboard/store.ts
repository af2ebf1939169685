import type { Task, TaskEventMessage, TaskStatus } from './types'

/** Past this many tasks the oldest are forgotten (and can be paged in again), so a busy system cannot grow the page without bound. */
const MAX_TASKS = 1000

/**
 * What the page knows: tasks by id, and which slice of the list it covers.
 * The listing is newest first, so what has been paged in is every task with
 * id >= floor (floor 0 once the last page is in); a task outside that range is
 * left to "Load more". Every update is merged by seq, so a stale HTTP answer
 * never overwrites a newer change from the feed, whichever arrives first.
 */
/** What the list is narrowed to: '' for any. */
export interface ListFilter {
  status: TaskStatus | ''
  queue: string
  type: string
  /** Title contains, ignoring case. */
  q: string
}

export const noFilter: ListFilter = { status: '', queue: '', type: '', q: '' }

export class TaskStore {
  readonly tasks = new Map<number, Task>()
  filter: ListFilter = noFilter
  /** Lowest id the loaded pages cover; Infinity until the first page is in. */
  floor = Infinity
  /** Ids from here up belong to newer pages: Infinity on the first page, which new tasks join. */
  ceiling = Infinity
  /** Cursor of the next page, null when the last page is in. */
  nextCursor: string | null = null

  reset(filter: ListFilter, ceiling = Infinity) {
    this.tasks.clear()
    this.filter = filter
    this.ceiling = ceiling
    this.floor = Infinity
    this.nextCursor = null
  }

  /** Adds one page of the listing. */
  addPage(results: Task[], nextCursor: string | null) {
    for (const t of results) this.upsert(t)
    this.nextCursor = nextCursor
    this.floor = nextCursor === null ? 0 : Math.min(this.floor, ...results.map((t) => t.id))
    this.trim()
  }

  /** Whether a task with this id belongs in what the page shows (ignoring the filter). */
  covers(id: number) {
    return id >= this.floor && id < this.ceiling
  }

  /** Whether the filter would show it; a change (no queue, type or title on it) is judged by status alone, its task once fetched. */
  matches(t: { status: TaskStatus; queue?: string; type?: string; title?: string }) {
    const { status, queue, type, q } = this.filter
    return (
      (status === '' || t.status === status) &&
      (queue === '' || t.queue === undefined || t.queue === queue) &&
      (type === '' || t.type === undefined || t.type === type) &&
      (q === '' || t.title === undefined || t.title.toLowerCase().includes(q.toLowerCase()))
    )
  }

  /** Keeps whichever of the known and the given version is newer; true if the given one won. */
  upsert(t: Task): boolean {
    const known = this.tasks.get(t.id)
    if (known && known.seq > t.seq) return false
    this.tasks.set(t.id, t)
    return true
  }

  /**
   * Applies one change to a known task. 'unknown' asks the caller to fetch it;
   * 'status' means the status changed, so fields the event does not carry
   * (attempts after a retry, error, result) are worth refreshing.
   */
  apply(e: TaskEventMessage): 'unknown' | 'stale' | 'deleted' | 'progress' | 'status' {
    if (e.deleted) return this.tasks.delete(e.task_id) ? 'deleted' : 'stale'
    const known = this.tasks.get(e.task_id)
    if (!known) return 'unknown'
    if (e.seq <= known.seq) return 'stale'
    const d = (e.detail ?? {}) as Record<string, unknown>
    const next: Task = { ...known, seq: e.seq, status: e.status, progress: e.progress, updated_at: e.at }
    if (typeof d.attempt === 'number') next.attempts = d.attempt
    if (typeof d.title === 'string') next.title = d.title
    if (typeof d.error === 'string') next.error = d.error
    if ('result' in d) next.result = d.result as Task['result']
    this.tasks.set(e.task_id, next)
    return known.status === e.status ? 'progress' : 'status'
  }

  /** The rows to show: loaded, matching the filter, newest first. */
  visible(): Task[] {
    return [...this.tasks.values()].filter((t) => this.covers(t.id) && this.matches(t)).sort((a, b) => b.id - a.id)
  }

  /** Forgets the oldest tasks past the cap; they stay reachable through "Load more". */
  trim() {
    if (this.tasks.size <= MAX_TASKS) return
    const ids = [...this.tasks.keys()].sort((a, b) => b - a)
    const keep = ids[MAX_TASKS - 1]!
    for (const id of ids.slice(MAX_TASKS)) this.tasks.delete(id)
    this.floor = keep
    this.nextCursor = String(keep)
  }
}
