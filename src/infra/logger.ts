export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'
type Fields = Record<string, unknown>

export interface Logger {
  debug(msg: string, fields?: Fields): void
  info(msg: string, fields?: Fields): void
  warn(msg: string, fields?: Fields): void
  error(msg: string, fields?: Fields): void
  child(scope: Fields): Logger
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 }

/** One JSON object per line on stderr, carrying its scope (role, task id, ...). */
export function createLogger(level: LogLevel, scope: Fields = {}): Logger {
  const write = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: Fields) => {
    if (rank[lvl] < rank[level]) return
    const line = { level: lvl, time: new Date().toISOString(), msg, ...scope, ...fields }
    // Whatever a message or an error carries, a working API token never reaches the log.
    process.stderr.write(redactTokens(JSON.stringify(line, errorReplacer)) + '\n')
  }
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (more) => createLogger(level, { ...scope, ...more }),
  }
}

function errorReplacer(_key: string, value: unknown) {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack }
  return value
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
