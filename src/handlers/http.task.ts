import { z } from 'zod'
import type { HttpTaskSettings, TaskType } from './handler'

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'] as const

/** The longest a payload's timeout_ms may ask for one request: Cloud Tasks' own ceiling. */
export const MAX_REQUEST_TIMEOUT_MS = 1_800_000

/**
 * Headers the worker sets itself, or that describe the connection rather
 * than the request (hop-by-hop): a payload that set them could break the
 * framing or pass for Taskline.
 */
const RESERVED_HEADERS = new Set([
  'connection',
  'content-length',
  'host',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** RFC 9110 token: what a header name may be made of. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** RFC 9110 field-value: visible characters, space, tab and obs-text; no CR or LF to end the line early, nothing fetch would refuse at run time. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

const headers = z.record(z.string(), z.string()).superRefine((h, ctx) => {
  for (const [name, value] of Object.entries(h)) {
    const lower = name.toLowerCase()
    if (!HEADER_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'is not a valid header name' })
    else if (RESERVED_HEADERS.has(lower) || lower.startsWith('x-taskline-'))
      ctx.addIssue({ code: 'custom', path: [name], message: 'may not be set by a payload' })
    else if (!HEADER_VALUE.test(value)) ctx.addIssue({ code: 'custom', path: [name], message: 'may hold only visible Latin-1 characters, spaces and tabs' })
  }
})

/** Each configured origin as URL.origin spells it (lower-case host, no default port, no path), to compare exactly. */
export const normaliseOrigins = (origins: readonly string[]): Set<string> => new Set(origins.map((o) => new URL(o).origin))

/** Why a URL may not be called under these settings, or undefined when it may. */
export function refusedOrigin(url: string, settings: HttpTaskSettings): string | undefined {
  const allowed = normaliseOrigins(settings.allowedOrigins)
  if (allowed.size === 0) return disabledMessage
  const parsed = URL.parse(url)
  if (!parsed || !isHttp(parsed)) return notHttpMessage
  const origin = parsed.origin
  if (!allowed.has(origin)) return `origin ${origin} is not on HTTP_TASK_ALLOWED_ORIGINS`
  // fetch would send them as a Basic Authorization header: credentials belong in the payload's headers.
  if (parsed.username || parsed.password) return 'must not hold a user name or password; send credentials in headers'
  return undefined
}

const isHttp = (u: URL) => u.protocol === 'http:' || u.protocol === 'https:'
const notHttpMessage = 'must be an http:// or https:// URL'
const disabledMessage = 'the http task type is disabled: HTTP_TASK_ALLOWED_ORIGINS lists no origin it may call'

function urlSchema(settings: HttpTaskSettings): z.ZodType<string> {
  // Disabled, every payload is refused on its url, present or not, so that is the first thing a client reads.
  if (settings.allowedOrigins.length === 0) return z.custom<string>(() => false, { message: disabledMessage }).meta({ description: disabledMessage })
  return z
    .url({ protocol: /^https?$/, error: notHttpMessage })
    .superRefine((u, ctx) => {
      const refused = refusedOrigin(u, settings)
      // One not an http(s) URL at all has its issue from z.url already.
      if (refused && refused !== notHttpMessage) ctx.addIssue({ code: 'custom', message: refused })
    })
    .meta({ description: 'an http(s) URL whose origin is on HTTP_TASK_ALLOWED_ORIGINS' })
}

/**
 * The built-in http type (Cloud Tasks' HTTP targets): the payload names a
 * request, a worker makes it and stores the response. See docs/http-tasks.md.
 */
export function httpTask(settings: HttpTaskSettings) {
  return {
    payload: z
      .strictObject({
        url: urlSchema(settings),
        method: z.enum(HTTP_METHODS).default('POST'),
        headers: headers.optional(),
        body: z.json().optional().meta({ description: 'sent as JSON, with content-type application/json' }),
        timeout_ms: z
          .number()
          .int()
          .min(1)
          .max(MAX_REQUEST_TIMEOUT_MS)
          .optional()
          .meta({ description: "limit on one request; the attempt's own limit (the task's timeout_ms, else 10 minutes) still applies" }),
      })
      .refine((p) => p.body === undefined || (p.method !== 'GET' && p.method !== 'HEAD'), { path: ['body'], message: 'GET and HEAD requests carry no body' }),
    // A receiver that hangs would otherwise hold its slot for TASK_TIMEOUT_MS (an hour); ten minutes is Cloud Tasks' default deadline.
    timeoutMs: 600_000,
  } satisfies TaskType
}

export type HttpTaskPayload = z.output<ReturnType<typeof httpTask>['payload']>
