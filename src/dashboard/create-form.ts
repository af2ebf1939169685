/// <reference lib="dom" />
import { ApiError, api, type CreateTaskBody, type ErrorDetail } from './api'
import { byId, h } from './dom'
import type { Task } from './types'

/** Form fields by the API's detail path; a nested path (payload.steps) belongs to its top-level field. */
const fields = ['title', 'type', 'payload', 'max_attempts'] as const
type Field = (typeof fields)[number]

/**
 * The create form. The API is the one judge of what is valid: errors come back
 * as details[].path and are shown next to the field each one names, so the
 * page never duplicates (and never drifts from) the server's rules.
 */
export function setupCreateForm(onCreated: (t: Task) => void) {
  const form = byId<HTMLFormElement>('create-form')
  const submit = form.querySelector<HTMLButtonElement>('button[type=submit]')!
  const formError = byId('create-error')
  const input = (f: Field) => form.elements.namedItem(f) as HTMLInputElement | HTMLTextAreaElement

  function clearErrors() {
    for (const f of fields) {
      input(f).removeAttribute('aria-invalid')
      byId(`err-${f}`).replaceChildren()
    }
    formError.replaceChildren()
    formError.hidden = true
  }

  function showErrors(details: ErrorDetail[], fallback: string) {
    const general: string[] = []
    for (const d of details) {
      const top = d.path.split('.')[0] as Field
      if (!fields.includes(top)) {
        general.push(d.path ? `${d.path}: ${d.message}` : d.message)
        continue
      }
      input(top).setAttribute('aria-invalid', 'true')
      const where = d.path === top ? d.message : `${d.path.slice(top.length + 1)}: ${d.message}`
      byId(`err-${top}`).append(h('span', {}, where))
    }
    if (!details.length) general.push(fallback)
    if (general.length) {
      formError.replaceChildren(...general.map((m) => h('p', {}, m)))
      formError.hidden = false
    }
    const firstInvalid = form.querySelector<HTMLElement>('[aria-invalid=true]')
    firstInvalid?.focus()
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    clearErrors()
    const body: CreateTaskBody = { title: input('title').value }
    const type = input('type').value.trim()
    if (type) body.type = type
    const maxAttempts = input('max_attempts').value.trim()
    if (maxAttempts) body.max_attempts = Number(maxAttempts)

    const rawPayload = input('payload').value.trim()
    let payloadError: string | null = null
    if (rawPayload) {
      try {
        body.payload = JSON.parse(rawPayload)
      } catch (err) {
        payloadError = `not valid JSON: ${(err as Error).message}`
        // Sent as a string, which the API always rejects as a payload: the
        // request then reports every other field's error in the same round
        // trip, and can never create a task from a payload we could not read.
        body.payload = rawPayload
      }
    }

    submit.disabled = true
    try {
      const task = await api.createTask(body)
      form.reset()
      onCreated(task)
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(0, 'error', String(err))
      const details = e.details.filter((d) => !(payloadError && d.path.split('.')[0] === 'payload'))
      if (payloadError) details.unshift({ path: 'payload', message: payloadError })
      showErrors(details, e.status === 401 ? 'The API needs a token: set one above, then try again.' : e.message)
    } finally {
      submit.disabled = false
    }
  })

  // Editing a field clears its message: it described the old value.
  form.addEventListener('input', (e) => {
    const name = (e.target as HTMLInputElement).name as Field
    if (!fields.includes(name)) return
    input(name).removeAttribute('aria-invalid')
    byId(`err-${name}`).replaceChildren()
  })
}
