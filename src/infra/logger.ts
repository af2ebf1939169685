import pino from 'pino'
import pinoPretty from 'pino-pretty'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'
type Fields = Record<string, unknown>

export interface Logger {
  debug(msg: string, fields?: Fields): void
  info(msg: string, fields?: Fields): void
  warn(msg: string, fields?: Fields): void
  error(msg: string, fields?: Fields): void
  child(scope: Fields): Logger
}

export type LogFormat = 'json' | 'pretty' | 'auto'

/**
 * pino underneath: one JSON object per line on stderr (human-readable when
 * asked, or by default in a terminal), each carrying its scope (role, worker
 * id, task id, request id). Writes are synchronous so the last lines before
 * an exit are never lost.
 */
export function createLogger(level: LogLevel, scope: Fields = {}, format: LogFormat = 'auto'): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY === true)
  const destination = pretty
    ? pinoPretty({ destination: 2, sync: true, colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' })
    : pino.destination({ fd: 2, sync: true })
  const base = pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { error: pino.stdSerializers.err },
      // Whatever a message or an error carries, a working API token never reaches the log.
      hooks: { streamWrite: redactTokens },
    },
    destination,
  )
  return wrap(base.child(scope))
}

function wrap(p: pino.Logger): Logger {
  return {
    debug: (m, f) => p.debug(f ?? {}, m),
    info: (m, f) => p.info(f ?? {}, m),
    warn: (m, f) => p.warn(f ?? {}, m),
    error: (m, f) => p.error(f ?? {}, m),
    child: (scope) => wrap(p.child(scope)),
  }
}

/** Log lines must never carry a working API token (format: domain/tokens/token.ts). */
export const redactTokens = (text: string) => text.replace(/\btl_(\d{1,15})_[A-Za-z0-9_-]{20,}/g, 'tl_$1_[redacted]')

export function coerceError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e))
}

/** Waits for every cleanup even when some fail, logging each failure instead of throwing. */
export async function settleAll(logger: Logger, cleanups: Promise<unknown>[]): Promise<void> {
  for (const r of await Promise.allSettled(cleanups)) {
    if (r.status === 'rejected') logger.warn('error while closing', { error: coerceError(r.reason).message })
  }
}
