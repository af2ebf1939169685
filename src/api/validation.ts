import { zValidator } from '@hono/zod-validator'
import type { MiddlewareHandler, ValidationTargets } from 'hono'
import type { z } from 'zod'
import { DomainError, validationErrorFromIssues } from '../domain/errors'

/**
 * zValidator with the one error shape the API promises: the first issue as a
 * sentence, every issue in details with its dotted path.
 */
export const validate = <T extends keyof ValidationTargets, S extends z.ZodType>(target: T, schema: S) =>
  zValidator(target, schema, (result) => {
    if (!result.success) throw validationErrorFromIssues(result.error.issues)
  })

export class UnsupportedMediaTypeError extends DomainError {
  constructor() {
    super('unsupported_media_type', 'request body must be JSON: send Content-Type: application/json')
  }
}

/** A JSON body is required; anything else is a 415, not a confusing "title is required". */
export function requireJson(): MiddlewareHandler {
  return async function requireJson(c, next) {
    const type = c.req.header('content-type')?.split(';')[0]?.trim().toLowerCase() ?? ''
    if (!/^application\/([\w.-]+\+)?json$/.test(type)) throw new UnsupportedMediaTypeError()
    await next()
  }
}
