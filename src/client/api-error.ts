/** One field the API found invalid, as its error body lists it. */
export interface ErrorDetail {
  path: string
  message: string
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

const isDetail = (v: unknown): v is ErrorDetail => isRecord(v) && typeof v.path === 'string' && typeof v.message === 'string'

/**
 * The API answered with an error status. Its body is usually the API's one
 * error shape, `{ error: { code, message, details } }`; anything else (a
 * proxy's HTML page, say) keeps the status and gets the caller's fallback words.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message)
    this.name = 'ApiError'
  }

  /** From an answer's status and its parsed JSON body (undefined or null when it had none). */
  static fromBody(status: number, body: unknown, fallback: { code?: string; message: string }): ApiError {
    const error = isRecord(body) ? body.error : undefined
    if (isRecord(error) && typeof error.code === 'string' && typeof error.message === 'string') {
      const details = Array.isArray(error.details) ? error.details.filter(isDetail) : []
      return new ApiError(status, error.code, error.message, details)
    }
    return new ApiError(status, fallback.code ?? `http_${status}`, fallback.message)
  }
}
