/// <reference lib="dom" />

type Attrs = Record<string, string | number | boolean | null | undefined>
type Child = Node | string | number | null | undefined | false

/** A tiny element factory: enough DOM building to stay readable without a framework. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue
    if (k === 'class') el.className = String(v)
    else el.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(typeof c === 'number' ? String(c) : c)
  return el
}

/** Runs `load` now and then every ms while the tab is visible: the cards whose data changes without a feed message. */
export function refreshWhileVisible(ms: number, load: () => Promise<unknown>): void {
  void load()
  setInterval(() => {
    if (document.visibilityState === 'visible') void load()
  }, ms)
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id)
  if (!el) throw new Error(`#${id} is missing from index.html`)
  return el as T
}

export const percent = (fraction: number) => `${Math.round(Math.max(0, Math.min(1, fraction)) * 100)}%`

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  const sameDay = d.toDateString() === new Date().toDateString()
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString()
}

/** A duration for people: ms under a second, else seconds with one decimal. */
export const seconds = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`)

/** The status badge, shared by the table and the history panel. */
export const statusBadge = (status: string) => h('span', { class: `badge badge-${status.toLowerCase()}` }, status)

/** A progress bar as a plain element, so it looks the same in every browser and exposes its value to assistive tech. */
export function progressBar(fraction: number): HTMLElement {
  const fill = h('span', { class: 'bar-fill' })
  const bar = h('span', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 }, fill)
  setProgress(bar, fraction)
  return bar
}

export function setProgress(bar: HTMLElement, fraction: number) {
  const p = Math.round(Math.max(0, Math.min(1, fraction)) * 100)
  bar.setAttribute('aria-valuenow', String(p))
  bar.setAttribute('aria-valuetext', `${p}%`)
  const fill = bar.firstElementChild as HTMLElement
  fill.style.width = `${p}%`
}
