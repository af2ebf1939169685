/** Errors the domain throws; api/error-handler.ts maps each code to HTTP. */
export class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
    this.name = new.target.name
  }
}

export interface ErrorDetail {
  path: string
  message: string
}

export class ValidationError extends DomainError {
  constructor(
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super('validation_error', message)
  }
}

export class NotFoundError extends DomainError {
  constructor(message: string) {
    super('not_found', message)
  }
}

/** The caller is known but may not do this (an admin action). */
export class ForbiddenError extends DomainError {
  constructor(message: string) {
    super('forbidden', message)
  }
}

export class ConflictError extends DomainError {
  constructor(message: string, code = 'conflict') {
    super(code, message)
  }
}

/** A job that can never succeed however often it is retried. */
export class PermanentError extends DomainError {
  constructor(message: string) {
    super('permanent_error', message)
  }
}

export const taskNotFound = (id: number) => new NotFoundError(`task ${id} not found`)

export interface ZodLikeIssue {
  path: PropertyKey[]
  message: string
  code?: string
  keys?: PropertyKey[]
}

const joinPath = (path: PropertyKey[]) => path.map(String).join('.')

/** One readable sentence plus a detail per issue, paths joined with dots. */
export function validationErrorFromIssues(issues: ZodLikeIssue[], prefix: PropertyKey[] = []): ValidationError {
  const details = issues.flatMap((i): ErrorDetail[] =>
    // zod reports unknown fields once, at the enclosing object's path ("" for the
    // body); clients need the offending field itself, so name each one.
    i.code === 'unrecognized_keys' && i.keys?.length
      ? i.keys.map((k) => ({ path: joinPath([...prefix, ...i.path, k]), message: 'unknown field' }))
      : [{ path: joinPath([...prefix, ...i.path]), message: i.message }],
  )
  return validationErrorFromDetails(details)
}

/** The one error for these problems: the first as a sentence that names its field, every one in details. */
export function validationErrorFromDetails(details: ErrorDetail[]): ValidationError {
  const first = details[0]
  return new ValidationError(first ? `${first.path || 'body'}: ${first.message}` : 'invalid request', details)
}
