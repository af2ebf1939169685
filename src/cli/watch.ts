/**
 * Follows one task over /ws/tasks/:id/ until it ends, drawing each change.
 * The shared follower (src/client/follow-task.ts) reconnects with backoff and
 * ?after_seq when the socket drops, so no change is missed or shown twice.
 */
import { followTask, type TaskFollower } from '../client/follow-task'
import type { SocketState } from '../client/reconnecting-socket'
import { ApiError, describeError, UnauthorizedError, type Client } from './client'
import { renderChangeLine, renderOutcome, renderProgressLine, type ProgressView } from './format'
import type { CliIO } from './io'
import { isTerminalStatus, socketMessageSchema, type SocketMessage, type Task } from './schemas'

export interface Backoff {
  initialMs: number
  maxMs: number
  /** Give up after this long without a working socket (a watch in a script must end some day). */
  giveUpAfterMs: number
}

const defaultBackoff: Backoff = { initialMs: 250, maxMs: 10_000, giveUpAfterMs: 120_000 }
/** A socket that says nothing for this long gets a `ping`; silence until the next tick means a dead connection. */
const HEARTBEAT_MS = 15_000
export const EXIT_INTERRUPTED = 130

export interface WatchOptions {
  client: Client
  io: CliIO
  /** The task as last read over HTTP: drawn first, and the socket resumes after its seq. */
  task: Task
  signal?: AbortSignal
  backoff?: Partial<Backoff>
}

type Outcome = { result?: unknown; error?: string | null; reason?: string | null }

/** Returns the exit code: 0 COMPLETED, 1 FAILED, CANCELLED, deleted or unreachable, 130 interrupted. */
export async function watchTask(o: WatchOptions): Promise<number> {
  const out = o.io.isTTY ? ttyRenderer(o.io) : plainRenderer(o.io)
  const view: ProgressView = {
    id: o.task.id,
    title: o.task.title,
    status: o.task.status,
    progress: o.task.progress,
    attempt: o.task.attempts || undefined,
    maxAttempts: o.task.max_attempts,
  }
  out.change(view, o.task.seq)
  // Already over: the HTTP read has everything, no socket needed.
  if (isTerminalStatus(o.task.status)) return finish(out, o.task.status, { result: o.task.result, error: o.task.error })
  if (o.signal?.aborted) return out.interrupted()
  return follow(o, out, view)
}

function finish(out: Renderer, status: string, outcome: Outcome): number {
  out.done(renderOutcome(status, outcome))
  return status === 'COMPLETED' ? 0 : 1
}

/** Applies one socket message to the view and draws it; returns an exit code once the task is over. */
function show(out: Renderer, view: ProgressView, m: Exclude<SocketMessage, { kind: 'pong' }>): number | undefined {
  view.status = m.status
  view.progress = m.progress
  view.note = undefined
  const detail = (m.kind === 'change' && isRecord(m.detail) ? m.detail : {}) as Record<string, unknown>
  if (m.kind === 'snapshot') view.attempt = m.task.attempts || undefined
  if (typeof detail.attempt === 'number') view.attempt = detail.attempt
  // A failed attempt with attempts left goes back to PENDING with the error: say why it is waiting.
  if (m.status === 'PENDING' && typeof detail.error === 'string') view.note = `retrying after: ${detail.error}`
  if (m.kind === 'change' && m.deleted) {
    out.fail([`error: task ${view.id} was deleted`])
    return 1
  }
  out.change(view, m.seq)
  if (!isTerminalStatus(m.status)) return undefined
  if (m.kind === 'snapshot') return finish(out, m.status, { result: m.task.result, error: m.task.error })
  return finish(out, m.status, {
    result: detail.result,
    error: typeof detail.error === 'string' ? detail.error : null,
    reason: typeof detail.reason === 'string' ? detail.reason : null,
  })
}

/** Follows the task's socket until its final status, a failure that will not get better, or Ctrl-C. */
function follow(o: WatchOptions, out: Renderer, view: ProgressView): Promise<number> {
  const backoff = { ...defaultBackoff, ...o.backoff }
  const id = o.task.id
  return new Promise((resolve) => {
    let settled = false
    let refusal: string[] | undefined
    let behindTimer: ReturnType<typeof setInterval> | undefined
    const checkBehind = behindCheck(o.client, id, () => follower)
    const end = (exit: () => number) => {
      if (settled) return
      settled = true
      clearInterval(behindTimer)
      o.signal?.removeEventListener('abort', onAbort)
      follower.close()
      resolve(exit())
    }
    const onAbort = () => end(() => out.interrupted())
    const fail = (lines: string[]) =>
      end(() => {
        out.fail(lines)
        return 1
      })
    const onState = (s: SocketState) => {
      clearInterval(behindTimer)
      if (s.kind === 'open') behindTimer = setInterval(checkBehind, HEARTBEAT_MS)
      else if (s.kind === 'waiting') out.note(`connection lost (${describeEnd(s.end)}), reconnecting in ${(s.retryInMs / 1000).toFixed(1)} s`)
      else if (s.kind === 'paused') fail(refusal ?? [`error: the API at ${o.client.baseUrl} refused the socket`])
      else if (s.kind === 'stopped' && s.why === 'gave-up') {
        fail([`error: lost the connection to ${o.client.baseUrl} and could not reconnect for ${Math.round(backoff.giveUpAfterMs / 1000)} s`])
      } else if (s.kind === 'stopped' && s.end?.code === 4404) fail([`error: task ${id} was deleted`])
      else if (s.kind === 'stopped' && s.end?.code === 4401) fail(describeError(new UnauthorizedError(o.client.baseUrl, Boolean(o.client.token))))
    }
    const follower: TaskFollower = followTask(o.client.baseUrl, id, {
      token: o.client.token,
      afterSeq: o.task.seq,
      minDelayMs: backoff.initialMs,
      maxDelayMs: backoff.maxMs,
      giveUpAfterMs: backoff.giveUpAfterMs,
      heartbeat: { pingEveryMs: HEARTBEAT_MS, silenceMs: HEARTBEAT_MS * 1.5 },
      refusedForGood: async () => (refusal = await permanentFailure(o.client, id)) !== undefined,
      onState,
      onChange(message) {
        const parsed = socketMessageSchema.safeParse(message)
        if (!parsed.success || parsed.data.kind === 'pong') return
        const exitCode = show(out, view, parsed.data)
        if (exitCode !== undefined) end(() => exitCode)
      },
    })
    o.signal?.addEventListener('abort', onAbort, { once: true })
  })
}

const describeEnd = (e: { code: number; reason: string }) => (e.code ? `code ${e.code}${e.reason ? `: ${e.reason}` : ''}` : e.reason)

/**
 * A socket can answer pings yet receive nothing (one opened on an API
 * instance as it shut down): if HTTP shows the task ahead of us twice in a
 * row, without us moving, resubscribe.
 */
function behindCheck(client: Client, id: number, follower: () => TaskFollower) {
  let behindAt: number | null = null
  return () => {
    const seqNow = follower().lastSeq
    client.getTask(id).then(
      (t) => {
        if (t.seq <= (follower().lastSeq ?? 0)) behindAt = null
        else if (behindAt === seqNow && follower().lastSeq === seqNow) follower().drop('socket fell behind the API')
        else behindAt = seqNow
      },
      () => {}, // the socket's own close or silence says more than a failed read
    )
  }
}

/**
 * A refused upgrade reaches a WebSocket client as a bare 1006, so ask over
 * HTTP: a deleted task or a rejected token will never get better; an API
 * that is down or restarting may.
 */
async function permanentFailure(client: Client, id: number): Promise<string[] | undefined> {
  try {
    await client.getTask(id)
    return undefined
  } catch (e) {
    if ((e instanceof ApiError && e.status === 404) || e instanceof UnauthorizedError) return describeError(e)
    return undefined
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
