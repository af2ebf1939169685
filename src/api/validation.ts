import { zValidator } from '@hono/zod-validator'
import type { Context, MiddlewareHandler, ValidationTargets } from 'hono'
import { z } from 'zod'
import { DomainError, type ErrorDetail, validationErrorFromDetails, validationErrorFromIssues } from '../domain/errors'

/** A list that takes no query parameters: an unknown one is a 400 naming it, as on /api/tasks/, not silently ignored. */
export const noQuery = z.strictObject({})

/** Every problem with an input the schema refused, given the schema's: its own and those of checks that run after it (a bulk create's other entries), in the order to report them. */
export type MoreProblems = (value: unknown, c: Context, refused: ErrorDetail[]) => Promise<ErrorDetail[]>

/**
 * zValidator with the one error shape the API promises: the first issue as a
 * sentence, every issue in details with its dotted path (with `more`, what
 * it makes of them and the later checks' problems).
 */
export const validate = <T extends keyof ValidationTargets, S extends z.ZodType>(target: T, schema: S, more?: MoreProblems) =>
  zValidator(target, schema, async (result, c) => {
    if (result.success) return
    const refused = validationErrorFromIssues(result.error.issues)
    if (!more) throw refused
    throw validationErrorFromDetails(await more(result.data, c, refused.details))
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
