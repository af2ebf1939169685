/// <reference lib="dom" />
import { ApiError, api, type CreateTaskBody, type ErrorDetail } from './api'
import { byId, h } from './dom'
import { TypeField } from './type-field'
import type { Task } from './types'

/** Form fields by the API's detail path; a nested path (payload.steps) belongs to its top-level field. */
const fields = ['title', 'type', 'payload', 'max_attempts', 'queue', 'priority'] as const
type Field = (typeof fields)[number]

type Input = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement

/** The request body from the fields, and why the payload could not be read, if it could not. */
function readBody(input: (f: Field) => Input): { body: CreateTaskBody; payloadError: string | null } {
  const body: CreateTaskBody = { title: input('title').value }
  const type = input('type').value.trim()
  if (type) body.type = type
  const maxAttempts = input('max_attempts').value.trim()
  if (maxAttempts) body.max_attempts = Number(maxAttempts)
  const queue = input('queue').value.trim()
  if (queue) body.queue = queue
  const priority = input('priority').value.trim()
  if (priority) body.priority = Number(priority)
  const rawPayload = input('payload').value.trim()
  if (!rawPayload) return { body, payloadError: null }
  try {
    body.payload = JSON.parse(rawPayload)
    return { body, payloadError: null }
  } catch (err) {
    // Sent as a string, which the API always rejects as a payload: the
    // request then reports every other field's error in the same round
    // trip, and can never create a task from a payload we could not read.
    body.payload = rawPayload
    return { body, payloadError: `not valid JSON: ${(err as Error).message}` }
  }
}

/** The API's details, with our own word on an unreadable payload in place of its. */
function detailsToShow(e: ApiError, payloadError: string | null): ErrorDetail[] {
  const details = e.details.filter((d) => !(payloadError && d.path.split('.')[0] === 'payload'))
  if (payloadError) details.unshift({ path: 'payload', message: payloadError })
  return details
}

/**
 * The create form. The API is the one judge of what is valid: errors come back
 * as details[].path and are shown next to the field each one names, so the
 * page never duplicates (and never drifts from) the server's rules.
 */
export class CreateForm {
  private readonly form = byId<HTMLFormElement>('create-form')
  private readonly submit = this.form.querySelector<HTMLButtonElement>('button[type=submit]')!
  private readonly formError = byId('create-error')
  /** The type select and the payload template; app.ts reads the list at start and when the token changes. */
  readonly types = new TypeField(this.form)

  constructor(private readonly onCreated: (t: Task) => void) {
    this.form.addEventListener('submit', (e) => {
      e.preventDefault()
      void this.send()
    })
    // Editing a field clears its message: it described the old value.
    this.form.addEventListener('input', (e) => {
      const name = (e.target as HTMLInputElement).name as Field
      if (fields.includes(name)) this.clearField(name)
    })
  }

  private async send() {
    this.clearErrors()
    const { body, payloadError } = readBody((f) => this.input(f))
    this.submit.disabled = true
    try {
      const task = await api.createTask(body)
      this.form.reset()
      // The next task is likely of the same type: keep it, with its template in place of the sent payload.
      this.types.keep(body.type ?? '')
      this.onCreated(task)
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(0, 'error', String(err))
      this.showErrors(detailsToShow(e, payloadError), e.status === 401 ? 'The API needs a token: set one above, then try again.' : e.message)
    } finally {
      this.submit.disabled = false
    }
  }

  private input(f: Field) {
    return this.form.elements.namedItem(f) as Input
  }

  private clearField(f: Field) {
    this.input(f).removeAttribute('aria-invalid')
    byId(`err-${f}`).replaceChildren()
  }

  private clearErrors() {
    for (const f of fields) this.clearField(f)
    this.formError.replaceChildren()
    this.formError.hidden = true
  }

  private showErrors(details: ErrorDetail[], fallback: string) {
    const general: string[] = []
    for (const d of details) {
      const top = d.path.split('.')[0] as Field
      if (fields.includes(top)) this.showFieldError(top, d)
      else general.push(d.path ? `${d.path}: ${d.message}` : d.message)
    }
    if (!details.length) general.push(fallback)
    if (general.length) {
      this.formError.replaceChildren(...general.map((m) => h('p', {}, m)))
      this.formError.hidden = false
    }
    this.form.querySelector<HTMLElement>('[aria-invalid=true]')?.focus()
  }

  private showFieldError(top: Field, d: ErrorDetail) {
    this.input(top).setAttribute('aria-invalid', 'true')
    const where = d.path === top ? d.message : `${d.path.slice(top.length + 1)}: ${d.message}`
    byId(`err-${top}`).append(h('span', {}, where))
  }
}
