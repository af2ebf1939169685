import { zValidator } from '@hono/zod-validator'
import type { Context, MiddlewareHandler, ValidationTargets } from 'hono'
import { z } from 'zod'
import { DomainError, type ErrorDetail, validationErrorFromDetails, validationErrorFromIssues } from '../domain/errors'

/** A list that takes no query parameters: an unknown one is a 400 naming it, as on /api/tasks/, not silently ignored. */
export const noQuery = z.strictObject({})

/** More problems with an input the schema refused, found by checks that run after it (a bulk create's other entries). */
export type MoreProblems = (value: unknown, c: Context) => Promise<ErrorDetail[]>

/**
 * zValidator with the one error shape the API promises: the first issue as a
 * sentence, every issue in details with its dotted path (with `more`, the
 * later checks' problems too, in path order).
 */
export const validate = <T extends keyof ValidationTargets, S extends z.ZodType>(target: T, schema: S, more?: MoreProblems) =>
  zValidator(target, schema, async (result, c) => {
    if (result.success) return
    const refused = validationErrorFromIssues(result.error.issues)
    if (!more) throw refused
    throw validationErrorFromDetails([...refused.details, ...(await more(result.data, c))].sort((a, b) => byPath(a.path, b.path)))
  })

/** Dotted paths in a stable order: indexes by value (tasks.2 before tasks.10), names alphabetically. */
function byPath(a: string, b: string): number {
  const [x, y] = [a.split('.'), b.split('.')]
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] === y[i]) continue
    const [m, n] = [Number(x[i]), Number(y[i])]
    return Number.isInteger(m) && Number.isInteger(n) ? m - n : x[i]! < y[i]! ? -1 : 1
  }
  return x.length - y.length
}

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
