/**
 * Follows one task over /ws/tasks/:id/ until it ends, drawing each change,
 * and reconnects with backoff and ?after_seq when the socket drops, so no
 * change is missed or shown twice.
 */
import { ApiError, describeError, UnauthorizedError, type Client } from './client'
import { renderChangeLine, renderOutcome, renderProgressLine, type ProgressView } from './format'
import type { CliIO } from './io'
import { isTerminalStatus, socketMessageSchema, type Task } from './schemas'

export interface Backoff {
  initialMs: number
  maxMs: number
  /** Give up after this long without a working socket (a watch in a script must end some day). */
  giveUpAfterMs: number
}

const defaultBackoff: Backoff = { initialMs: 250, maxMs: 10_000, giveUpAfterMs: 120_000 }
/** A socket that says nothing for this long gets a `ping`; no answer by the next tick means a dead connection. */
const HEARTBEAT_MS = 15_000
const CONNECT_TIMEOUT_MS = 10_000
export const EXIT_INTERRUPTED = 130

export interface WatchOptions {
  client: Client
  io: CliIO
  /** The task as last read over HTTP: drawn first, and the socket resumes after its seq. */
  task: Task
  signal?: AbortSignal
  backoff?: Partial<Backoff>
}

type SocketEnd = { kind: 'final'; exitCode: number } | { kind: 'closed'; opened: boolean; code: number; reason: string } | { kind: 'aborted' }

/** Returns the exit code: 0 COMPLETED, 1 FAILED, CANCELLED, deleted or unreachable, 130 interrupted. */
export async function watchTask(o: WatchOptions): Promise<number> {
  const backoff = { ...defaultBackoff, ...o.backoff }
  const id = o.task.id
  const out = o.io.isTTY ? ttyRenderer(o.io) : plainRenderer(o.io)
  const view: ProgressView = { id, title: o.task.title, status: o.task.status, progress: o.task.progress, attempt: o.task.attempts || undefined, maxAttempts: o.task.max_attempts }
  let lastSeq = o.task.seq

  out.change(view, lastSeq)
  // Already over: the HTTP read has everything, no socket needed.
  if (isTerminalStatus(o.task.status)) return finish(o.task.status, { result: o.task.result, error: o.task.error })

  function finish(status: string, outcome: { result?: unknown; error?: string | null; reason?: string | null }): number {
    out.done(renderOutcome(status, outcome))
    return status === 'COMPLETED' ? 0 : 1
  }

  /** Applies one socket message; returns an exit code once the task is over. */
  function onMessage(text: string): number | undefined {
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      return undefined
    }
    const parsed = socketMessageSchema.safeParse(json)
    if (!parsed.success) return undefined
    const m = parsed.data
    if (m.kind === 'pong' || m.task_id !== id || m.seq <= lastSeq) return undefined
    lastSeq = m.seq
    view.status = m.status
    view.progress = m.progress
    view.note = undefined
    const detail = (m.kind === 'change' && isRecord(m.detail) ? m.detail : {}) as Record<string, unknown>
    if (m.kind === 'snapshot') view.attempt = m.task.attempts || undefined
    if (typeof detail.attempt === 'number') view.attempt = detail.attempt
    // A failed attempt with attempts left goes back to PENDING with the error: say why it is waiting.
    if (m.status === 'PENDING' && typeof detail.error === 'string') view.note = `retrying after: ${detail.error}`
    if (m.kind === 'change' && m.deleted) {
      out.fail([`error: task ${id} was deleted`])
      return 1
    }
    out.change(view, m.seq)
    if (!isTerminalStatus(m.status)) return undefined
    if (m.kind === 'snapshot') return finish(m.status, { result: m.task.result, error: m.task.error })
    return finish(m.status, {
      result: detail.result,
      error: typeof detail.error === 'string' ? detail.error : null,
      reason: typeof detail.reason === 'string' ? detail.reason : null,
    })
  }

  function openSocket(url: string): Promise<SocketEnd> {
    return new Promise((resolve) => {
      const ws = new WebSocket(url, o.client.socketProtocols())
      let opened = false
      let settled = false
      let awaitingPong = false
      const end = (result: SocketEnd) => {
        if (settled) return
        settled = true
        clearTimeout(connectTimer)
        clearInterval(heartbeat)
        o.signal?.removeEventListener('abort', onAbort)
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null
        if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(1000)
        resolve(result)
      }
      const onAbort = () => end({ kind: 'aborted' })
      const connectTimer = setTimeout(() => end({ kind: 'closed', opened: false, code: 0, reason: 'no answer' }), CONNECT_TIMEOUT_MS)
      // A peer that vanished (laptop sleep, NAT timeout) never sends a close; only silence tells.
      // A socket can also answer pings yet receive nothing (one opened on an API instance as it
      // shut down): if HTTP shows the task ahead of us twice in a row, without us moving, resubscribe.
      let behindAt: number | null = null
      const heartbeat = setInterval(() => {
        if (!opened) return
        if (awaitingPong) return end({ kind: 'closed', opened: true, code: 0, reason: 'no answer to ping' })
        awaitingPong = true
        ws.send('ping')
        const seqNow = lastSeq
        o.client.getTask(id).then(
          (t) => {
            if (t.seq <= lastSeq) behindAt = null
            else if (behindAt === seqNow && lastSeq === seqNow) end({ kind: 'closed', opened: true, code: 0, reason: 'socket fell behind the API' })
            else behindAt = seqNow
          },
          () => {}, // the socket's own close or silence says more than a failed read
        )
      }, HEARTBEAT_MS)
      o.signal?.addEventListener('abort', onAbort, { once: true })
      if (o.signal?.aborted) return onAbort()
      ws.onopen = () => {
        opened = true
        clearTimeout(connectTimer)
      }
      ws.onmessage = (e) => {
        awaitingPong = false
        const exitCode = onMessage(String(e.data))
        if (exitCode !== undefined) end({ kind: 'final', exitCode })
      }
      ws.onclose = (e) => end({ kind: 'closed', opened, code: e.code, reason: e.reason })
    })
  }

  /**
   * A refused upgrade reaches a WebSocket client as a bare 1006, so ask over
   * HTTP: a deleted task or a rejected token will never get better; an API
   * that is down or restarting may.
   */
  async function permanentFailure(): Promise<string[] | undefined> {
    try {
      await o.client.getTask(id)
      return undefined
    } catch (e) {
      if ((e instanceof ApiError && e.status === 404) || e instanceof UnauthorizedError) return describeError(e)
      return undefined
    }
  }

  let delay = backoff.initialMs
  let downSince: number | null = null
  for (;;) {
    const end = await openSocket(o.client.socketUrl(id, lastSeq))
    if (end.kind === 'final') return end.exitCode
    if (end.kind === 'aborted') return out.interrupted()
    if (end.code === 4404) {
      out.fail([`error: task ${id} was deleted`])
      return 1
    }
    if (end.opened) {
      delay = backoff.initialMs
      downSince = null
    }
    downSince ??= Date.now()
    if (!end.opened) {
      const lines = await permanentFailure()
      if (lines) {
        out.fail(lines)
        return 1
      }
    }
    if (Date.now() - downSince > backoff.giveUpAfterMs) {
      out.fail([`error: lost the connection to ${o.client.baseUrl} and could not reconnect for ${Math.round(backoff.giveUpAfterMs / 1000)} s`])
      return 1
    }
    // Jittered so many watchers dropped by one API restart do not reconnect in lock-step.
    const wait = Math.round(delay / 2 + Math.random() * (delay / 2))
    const why = end.code ? `code ${end.code}${end.reason ? `: ${end.reason}` : ''}` : end.reason
    out.note(`connection lost (${why}), reconnecting in ${(wait / 1000).toFixed(1)} s`)
    if (!(await sleep(wait, o.signal))) return out.interrupted()
    delay = Math.min(delay * 2, backoff.maxMs)
  }
}

interface Renderer {
  change(view: ProgressView, seq: number): void
  /** Something transient about the connection. */
  note(text: string): void
  /** The final outcome line, on stdout. */
  done(line: string): void
  fail(lines: string[]): void
  interrupted(): number
}

/** One line redrawn in place: \r back to column 0, then clear what a longer previous line left. */
function ttyRenderer(io: CliIO): Renderer {
  let current: ProgressView | undefined
  const draw = () => current && io.out(`\r${renderProgressLine(current, { columns: io.columns, color: io.color })}\x1b[K`)
  return {
    change(view) {
      current = { ...view }
      draw()
    },
    note(text) {
      if (current) current.note = text
      draw()
    },
    done(line) {
      io.out(`\n${line}\n`)
    },
    fail(lines) {
      io.out('\n')
      io.err(lines.map((l) => `${l}\n`).join(''))
    },
    interrupted() {
      io.out('\n')
      return EXIT_INTERRUPTED
    },
  }
}

/** For pipes and logs: one `seq status progress%` line per change, connection notes on stderr. */
function plainRenderer(io: CliIO): Renderer {
  return {
    change: (view, seq) => io.out(`${renderChangeLine({ seq, status: view.status, progress: view.progress })}\n`),
    note: (text) => io.err(`watch: ${text}\n`),
    done: (line) => io.out(`${line}\n`),
    fail: (lines) => io.err(lines.map((l) => `${l}\n`).join('')),
    interrupted: () => EXIT_INTERRUPTED,
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Resolves true after ms, or false at once if the signal aborts first. */
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false)
    const onAbort = () => {
      clearTimeout(timer)
      resolve(false)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve(true)
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
