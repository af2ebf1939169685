import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { DomainError, ValidationError } from '../domain/errors'
import type { Logger } from '../infra/logger'
import { isUnavailable } from './unavailable'

const statusByCode: Record<string, ContentfulStatusCode> = {
  validation_error: 400,
  invalid_json: 400,
  unauthorized: 401,
  forbidden: 403,
  forbidden_origin: 403,
  not_found: 404,
  conflict: 409,
  idempotency_conflict: 409,
  unsupported_media_type: 415,
  too_many_connections: 429,
  unavailable: 503,
}

export function errorBody(code: string, message: string, details?: unknown) {
  return { error: details === undefined ? { code, message } : { code, message, details } }
}

/** Every failure leaves as one JSON shape; nothing internal (stack, SQL) reaches the client. */
export function createErrorHandler(logger: Logger) {
  return function onError(err: Error, c: Context) {
    if (err instanceof ValidationError) return c.json(errorBody(err.code, err.message, err.details), 400)
    if (err instanceof DomainError) {
      if (err.code === 'unauthorized') c.header('WWW-Authenticate', 'Bearer')
      return c.json(errorBody(err.code, err.message), statusByCode[err.code] ?? 400)
    }
    if (err instanceof HTTPException) {
      const malformed = err.status === 400 && /json/i.test(err.message)
      const code = malformed ? 'invalid_json' : err.status === 413 ? 'payload_too_large' : 'http_error'
      const message = malformed ? 'request body is not valid JSON' : err.message || 'request failed'
      return c.json(errorBody(code, message), err.status as ContentfulStatusCode)
    }
    const requestId = c.get('requestId') as string | undefined
    const unavailable = isUnavailable(err)
    if (unavailable) {
      logger.warn(`${unavailable} unavailable`, { requestId, path: c.req.path, error: err.message })
      c.header('Retry-After', '1')
      return c.json(errorBody('unavailable', `${unavailable} is unavailable; retry shortly`), 503)
    }
    logger.error('unhandled error', { requestId, method: c.req.method, path: c.req.path, error: err })
    return c.json(errorBody('internal_error', `internal error (request id ${requestId ?? 'unknown'})`), 500)
  }
}
