import { createHmac } from 'node:crypto'
import { storableText } from '../infra/jsonb'
import { type HandlerContext, type HttpTaskSettings, PermanentError, RetryableError } from './handler'
import { type HttpTaskPayload, refusedOrigin } from './http.task'

/** The most of a response body a result keeps; the rest is not read. */
export const MAX_RESULT_BODY_BYTES = 64 * 1024
/** An error keeps the first 200 characters of its body: at most 800 bytes of UTF-8. */
const ERROR_BODY_BYTES = 800
const ERROR_BODY_CHARS = 200
/** A Retry-After beyond the backoff's own ceiling is cut to it, so a receiver cannot park a task for days. */
export const MAX_RETRY_AFTER_MS = 3_600_000

/**
 * One attempt: one request, no redirects followed. 2xx completes the task
 * with { status, body }; 408, 429, 5xx, network errors and the request's own
 * timeout are retried (no sooner than Retry-After); any other status fails
 * the task at once. See docs/http-tasks.md.
 */
export async function runHttpTask(payload: HttpTaskPayload, ctx: HandlerContext, settings: HttpTaskSettings): Promise<HttpTaskResult> {
  // The worker's list may have changed since the POST (or differ from the API's): it decides for each attempt.
  const refused = refusedOrigin(payload.url, settings)
  if (refused) throw new PermanentError(`url: ${refused}`)
  const body = payload.body === undefined ? undefined : JSON.stringify(payload.body)
  // A timer of our own, cleared after the attempt: AbortSignal.timeout would stay armed up to 30 minutes per task.
  const timeout = new AbortController()
  const timer = payload.timeout_ms === undefined ? undefined : setTimeout(() => timeout.abort(), payload.timeout_ms)
  const signal = AbortSignal.any([ctx.signal, timeout.signal])
  try {
    const res = await fetch(payload.url, {
      method: payload.method,
      headers: requestHeaders(payload, ctx, body, settings.signingSecret),
      body,
      redirect: 'manual',
      signal,
    })
    return await settle(res)
  } catch (e) {
    if (e instanceof PermanentError || e instanceof RetryableError) throw e
    // Cancelled, the attempt timed out, or shutdown: the worker reads which from its own signal.
    if (ctx.signal.aborted) throw ctx.signal.reason
    if (timeout.signal.aborted) throw new RetryableError(`request timed out after ${payload.timeout_ms} ms`)
    throw new RetryableError(`request failed: ${describeNetworkError(e)}`)
  } finally {
    clearTimeout(timer)
  }
}

export interface HttpTaskResult {
  status: number
  /** Parsed when the response says it is JSON (and it parses), else text; null when empty. */
  body: unknown
  /** Present, and true, when the body passed 64 KB and was cut there. */
  truncated?: true
}

function requestHeaders(payload: HttpTaskPayload, ctx: HandlerContext, body: string | undefined, secret: string | undefined): Headers {
  const headers = new Headers(payload.headers)
  if (body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json')
  headers.set('x-taskline-task-id', String(ctx.taskId))
  headers.set('x-taskline-attempt', String(ctx.attempt))
  if (secret) headers.set('x-taskline-signature', signature(secret, body ?? ''))
  return headers
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, as receivers check it (docs/http-tasks.md). */
export function signature(secret: string, rawBody: string, nowMs = Date.now()): string {
  const t = Math.floor(nowMs / 1000)
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${rawBody}`).digest('hex')}`
}

/** The response as the task's result, or as the error that fails or retries the attempt. */
async function settle(res: Response): Promise<HttpTaskResult> {
  const { status } = res
  if (status >= 200 && status < 300) {
    const { text, truncated } = await readCapped(res, MAX_RESULT_BODY_BYTES)
    const body = text === '' ? null : truncated || !isJson(res.headers.get('content-type')) ? text : parseJsonOr(text)
    return truncated ? { status, body, truncated } : { status, body }
  }
  if (status >= 300 && status < 400) {
    await res.body?.cancel().catch(() => {})
    const location = res.headers.get('location')
    throw new PermanentError(`HTTP ${status}: redirects are not followed${location ? ` (to ${storableText(location).slice(0, ERROR_BODY_CHARS)})` : ''}`)
  }
  const start = (await readCapped(res, ERROR_BODY_BYTES)).text.slice(0, ERROR_BODY_CHARS)
  const message = `HTTP ${status}: ${start}`
  if (status === 408 || status === 429 || status >= 500) throw new RetryableError(message, retryAfterMs(res.headers.get('retry-after')))
  throw new PermanentError(message)
}

/** Reads at most maxBytes of the body, then cancels the rest of the stream instead of buffering it. */
async function readCapped(res: Response, maxBytes: number): Promise<{ text: string; truncated: boolean }> {
  if (!res.body) return { text: '', truncated: false }
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  let truncated = false
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    const room = maxBytes - size
    if (value.byteLength > room) {
      chunks.push(value.subarray(0, room))
      truncated = true
      await reader.cancel().catch(() => {})
      break
    }
    chunks.push(value)
    size += value.byteLength
  }
  // stream: true drops a character the cut split in two, rather than ending on U+FFFD.
  const text = new TextDecoder().decode(Buffer.concat(chunks), { stream: truncated })
  return { text: storableText(text), truncated }
}

const isJson = (contentType: string | null) => contentType !== null && /^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType)

/** JSON that Postgres can store as it is; text (what it was sent as) otherwise. */
function parseJsonOr(text: string): unknown {
  try {
    const value: unknown = JSON.parse(text)
    return jsonbSafe(value) ? value : text
  } catch {
    return text
  }
}

/** jsonb refuses NUL and lone surrogates (escaped in JSON as \u0000, \ud800). */
function jsonbSafe(value: unknown): boolean {
  const stack = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v === 'string') {
      if (v.includes('\0') || !v.isWellFormed()) return false
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        if (k.includes('\0') || !k.isWellFormed()) return false
        stack.push(x)
      }
    }
  }
  return true
}

/**
 * Retry-After as a delay: delta-seconds or an HTTP-date (RFC 9110 §10.2.3);
 * undefined when absent or unreadable, then the backoff alone decides.
 */
export function retryAfterMs(value: string | null, nowMs = Date.now()): number | undefined {
  const v = value?.trim()
  if (!v) return undefined
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, MAX_RETRY_AFTER_MS)
  // Date.parse also reads bare numbers ("-5") as years: an HTTP-date names its day and month.
  const at = /[a-z]/i.test(v) ? Date.parse(v) : Number.NaN
  return Number.isNaN(at) ? undefined : Math.min(Math.max(0, at - nowMs), MAX_RETRY_AFTER_MS)
}

function describeNetworkError(e: unknown): string {
  const err = e as { message?: unknown; code?: unknown }
  const message = typeof err?.message === 'string' ? err.message : String(e)
  return typeof err?.code === 'string' && !message.includes(err.code) ? `${err.code}: ${message}` : message
}
