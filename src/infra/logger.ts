import { writeSync } from 'node:fs'
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
 * id, task id, request id). JSON lines leave once per event-loop turn
 * (stderrByTurn), human-readable ones at once.
 */
export function createLogger(level: LogLevel, scope: Fields = {}, format: LogFormat = 'auto'): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY === true)
  const destination = pretty
    ? pinoPretty({ destination: 2, sync: true, colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' })
    : (stderrByTurn ??= new TurnBufferedWriter(2))
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

/**
 * Writes what was logged in one event-loop turn with one synchronous write:
 * under load an access line per request would otherwise be a system call per
 * request. Still synchronous (nothing waits on a thread pool), and what is
 * pending is written on exit, so only a SIGKILL can lose the last turn's lines.
 */
export class TurnBufferedWriter {
  private pending: string[] = []
  private scheduled = false

  constructor(private readonly fd: number) {
    process.on('exit', () => this.flush())
  }

  write(line: string): boolean {
    this.pending.push(line)
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => this.flush())
    }
    return true
  }

  flush(): void {
    this.scheduled = false
    if (this.pending.length === 0) return
    let rest = Buffer.from(this.pending.join(''))
    this.pending = []
    while (rest.length > 0) {
      try {
        rest = rest.subarray(writeSync(this.fd, rest))
      } catch (e) {
        // A full non-blocking pipe: write again once the reader has taken some. Anything else: the lines are lost, not the process.
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return
      }
    }
  }
}

/** One for the process: every logger's JSON lines share its turn's write. */
let stderrByTurn: TurnBufferedWriter | undefined

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
