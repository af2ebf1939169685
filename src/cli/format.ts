/**
 * Pure rendering: every function takes data and returns text, so the output
 * is unit-tested without a server, a terminal or a clock.
 */
import type { ErrorDetail, Task, TaskEvent } from './schemas'

/** Whole percent, rounded down so a task never shows 100% before it is done. */
export function percent(progress: number): string {
  // The epsilon keeps 0.29 (28.999999999999996 after *100) at 29.
  const p = Math.floor(Math.min(1, Math.max(0, progress)) * 100 + 1e-9)
  return `${p}%`
}

const eighths = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉']

/** `[████▌░░░░]` with width cells inside the brackets; eighth blocks make slow tasks visibly move. */
export function progressBar(progress: number, width: number): string {
  const cells = Math.max(1, Math.floor(width))
  const filled = Math.min(1, Math.max(0, progress)) * cells
  const full = Math.floor(filled + 1e-9)
  const part = full < cells ? (eighths[Math.floor((filled - full) * 8)] ?? '') : ''
  return `[${'█'.repeat(full)}${part}${'░'.repeat(cells - full - (part ? 1 : 0))}]`
}

/** Cuts text to max characters, marking the cut. */
export function truncate(text: string, max: number): string {
  if (max <= 0) return ''
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`
}

const colors: Record<string, string> = { COMPLETED: '32', FAILED: '31', CANCELLED: '33', PROCESSING: '36' }

function colorStatus(status: string, color: boolean): string {
  const code = colors[status]
  return color && code ? `\x1b[${code}m${status}\x1b[0m` : status
}

export interface ProgressView {
  id: number
  title?: string
  status: string
  progress: number
  attempt?: number
  maxAttempts?: number
  /** Shown after the bar, e.g. while reconnecting. */
  note?: string
}

/**
 * The single line a terminal redraws in place (the caller adds \r and
 * clear-to-end). It must stay shorter than the terminal: a wrapped line
 * cannot be redrawn with \r and would print a new line per update.
 */
export function renderProgressLine(v: ProgressView, opts: { columns: number; color?: boolean }): string {
  const max = Math.max(1, opts.columns - 1)
  const head = `task ${v.id}`
  const status = v.status.padEnd(10)
  const pct = percent(v.progress).padStart(4)
  const extras = [v.attempt ? `attempt ${v.attempt}${v.maxAttempts ? `/${v.maxAttempts}` : ''}` : '', v.note ?? ''].filter(Boolean)
  const essentials = `${head}  ${status}  ${pct}`
  // Too narrow even for the essentials: cut them, uncolored, so the cut cannot split an escape sequence.
  if (essentials.length > max) return truncate(`${head} ${v.status} ${percent(v.progress)}`, max)
  const fixed = `${head}  ${status}  []  ${pct}`.length
  const barWidth = Math.min(30, max - fixed)
  const bar = barWidth >= 5 ? `  ${progressBar(v.progress, barWidth)}` : ''
  // Color the word, not its padding: the lookup is by status name.
  let line = `${head}  ${colorStatus(v.status, opts.color ?? false)}${status.slice(v.status.length)}${bar}  ${pct}`
  let used = `${head}  ${status}${bar}  ${pct}`.length
  for (const extra of [...extras, v.title ?? '']) {
    if (!extra || used + 2 >= max) continue
    const text = truncate(extra, max - used - 2)
    line += `  ${text}`
    used += 2 + text.length
  }
  return line
}

/** One line per change when stdout is not a terminal: easy to grep and to parse. */
export function renderChangeLine(c: { seq: number; status: string; progress: number }): string {
  return `${c.seq} ${c.status} ${percent(c.progress)}`
}

/** The last line of a watch: what the task produced, or why it did not. */
export function renderOutcome(status: string, outcome: { result?: unknown; error?: string | null; reason?: string | null }): string {
  if (status === 'COMPLETED') return `result: ${JSON.stringify(outcome.result ?? null)}`
  if (status === 'CANCELLED') return `error: task cancelled${outcome.reason ? ` (${outcome.reason})` : ''}`
  return `error: ${outcome.error ?? 'task failed'}`
}

/** YYYY-MM-DD HH:MM:SS in the given (default: local) time zone, like ls -l. */
export function formatTime(iso: string | null | undefined, timeZone?: string): string {
  if (!iso) return '-'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  // sv-SE formats as ISO-like "2026-11-29 18:04:50" in every ICU build.
  return d.toLocaleString('sv-SE', { timeZone, hour12: false })
}

/** Columns padded to their widest cell; the last column is not padded so lines carry no trailing spaces. */
export function renderTable(headers: string[], rows: string[][], align: ('left' | 'right')[] = []): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => {
        if (i === cells.length - 1 && align[i] !== 'right') return c
        return align[i] === 'right' ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)
      })
      .join('  ')
      .trimEnd()
  return [line(headers), ...rows.map(line)].join('\n')
}

const TITLE_WIDTH = 40

export function renderTaskTable(tasks: Task[], timeZone?: string): string {
  if (tasks.length === 0) return 'no tasks'
  return renderTable(
    ['ID', 'STATUS', 'PROGRESS', 'ATTEMPTS', 'TITLE', 'CREATED'],
    tasks.map((t) => [
      String(t.id),
      t.status,
      percent(t.progress),
      `${t.attempts}/${t.max_attempts}`,
      truncate(t.title.replace(/\s+/g, ' '), TITLE_WIDTH),
      formatTime(t.created_at, timeZone),
    ]),
    ['right', 'left', 'right', 'right', 'left', 'left'],
  )
}

const show = (v: unknown): string => {
  if (v === null || v === undefined) return '-'
  return typeof v === 'string' ? v : JSON.stringify(v)
}

/** The fields people look at first, in that order; any other field follows, so nothing the API sends is hidden. */
const keyOrder = [
  'id',
  'title',
  'type',
  'status',
  'progress',
  'attempts',
  'payload',
  'result',
  'error',
  'timeout_ms',
  'seq',
  'run_after',
  'created_at',
  'started_at',
  'finished_at',
  'updated_at',
]

export function renderKeyValue(task: Task): string {
  const fields = task as Record<string, unknown>
  const pairs: [string, string][] = []
  for (const key of keyOrder) {
    if (key === 'progress') pairs.push([key, percent(task.progress)])
    else if (key === 'attempts') pairs.push([key, `${task.attempts}/${task.max_attempts}`])
    else if (key in fields) pairs.push([key, show(fields[key])])
  }
  for (const [key, value] of Object.entries(fields)) {
    if (!keyOrder.includes(key) && key !== 'max_attempts') pairs.push([key, show(value)])
  }
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join('\n')
}

export function renderEventTable(events: TaskEvent[], timeZone?: string): string {
  if (events.length === 0) return 'no events'
  return renderTable(
    ['SEQ', 'STATUS', 'PROGRESS', 'AT', 'DETAIL'],
    events.map((e) => [String(e.seq), e.status, percent(e.progress), formatTime(e.at, timeZone), e.detail == null ? '' : JSON.stringify(e.detail)]),
    ['right', 'left', 'right', 'left', 'left'],
  )
}

/**
 * An API error as the user reads it: one line naming what went wrong and the
 * API's code, then one indented line per invalid field.
 */
export function renderApiError(e: { code: string; message: string; details?: ErrorDetail[] }): string[] {
  const details = e.details ?? []
  if (details.length === 0) return [`error: ${e.message} (${e.code})`]
  return [`error: invalid request (${e.code})`, ...details.map((d) => `  ${d.path || 'body'}: ${d.message}`)]
}
