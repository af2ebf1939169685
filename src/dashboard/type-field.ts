/// <reference lib="dom" />
import { api } from './api'
import { byId, h } from './dom'
import { payloadTemplate, templateText } from './payload-template'
import type { TaskTypeInfo } from './types'

/** The list is read again when the form gains focus, but not more often than this. */
const REFRESH_MS = 2000
const NO_WORKER = '(no worker)'

/**
 * The create form's type field: a select of GET /api/task-types/, marking the
 * types no live worker handles (their tasks are accepted and wait), and the
 * payload template of the chosen type, put in the payload field only while
 * that field holds nothing of the user's.
 */
export class TypeField {
  private readonly select = byId<HTMLSelectElement>('f-type')
  private readonly payload = byId<HTMLTextAreaElement>('f-payload')
  private readonly note = byId('type-note')
  private readonly hint = byId('payload-hint')
  private types = new Map<string, TaskTypeInfo>()
  /** What the list was last drawn from: the options are rebuilt only when it changes, so an open select is left alone. */
  private drawn = ''
  /** The text this class last put in the payload field; the same text there now means the user has not touched it. */
  private template: string | null = null
  private loadedAt = Number.NEGATIVE_INFINITY
  private loading: Promise<void> | null = null

  constructor(form: HTMLFormElement) {
    this.select.addEventListener('change', () => this.show(false))
    // Opening the form is when a worker that started since matters; a burst of focus changes reads the list once.
    form.addEventListener('focusin', () => void this.load(REFRESH_MS))
  }

  /** Reads the list, unless it was read less than maxAgeMs ago; a failure keeps the list shown (the page says why elsewhere, e.g. a 401). */
  load(maxAgeMs = 0): Promise<void> {
    if (this.loading || performance.now() - this.loadedAt < maxAgeMs) return this.loading ?? Promise.resolve()
    this.loading = api
      .listTaskTypes()
      .then(({ results }) => {
        this.loadedAt = performance.now()
        this.types = new Map(results.map((t) => [t.name, t]))
        this.draw(results)
        this.show(false)
      })
      .catch(() => undefined)
      .finally(() => {
        this.loading = null
      })
    return this.loading
  }

  /** After a task is created and the form reset: the same type again, with a fresh template. */
  keep(type: string) {
    if ([...this.select.options].some((o) => o.value === type)) this.select.value = type
    this.show(true)
  }

  private draw(list: TaskTypeInfo[]) {
    const drawn = JSON.stringify(list.map((t) => [t.name, t.handled]))
    if (drawn === this.drawn) return
    this.drawn = drawn
    const chosen = this.select.value
    this.select.replaceChildren(
      ...list.map((t) => {
        const option = new Option(t.handled ? t.name : `${t.name} ${NO_WORKER}`, t.name)
        option.dataset.handled = String(t.handled)
        return option
      }),
    )
    // The choice survives a refresh; a first load keeps the page's default, demo.
    if (this.types.has(chosen)) this.select.value = chosen
  }

  /** The chosen type's note and optional fields, and its template where the payload field allows it. */
  private show(force: boolean) {
    const type = this.types.get(this.select.value)
    this.note.hidden = !type || type.handled
    this.note.textContent = type && !type.handled ? `No live worker handles ${type.name}: its tasks wait as PENDING until a worker that handles it starts.` : ''
    if (!type) return
    const t = payloadTemplate(type.payload_schema)
    this.hint.replaceChildren(
      ...(t.optional.length ? ['Optional: '] : []),
      ...t.optional.flatMap((f, i) => [i ? ', ' : '', h('code', { title: f.description ?? undefined }, f.path), f.kind ? ` (${f.kind})` : '']),
    )
    this.hint.hidden = t.optional.length === 0
    const current = this.payload.value.trim()
    if (!force && current !== '' && current !== '{}' && current !== this.template?.trim()) return
    this.template = templateText(t)
    if (this.payload.value === this.template) return
    this.payload.value = this.template
    // As if typed: the form clears the message that described the old payload.
    this.payload.dispatchEvent(new Event('input', { bubbles: true }))
  }
}
