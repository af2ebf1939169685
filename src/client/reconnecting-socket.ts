/**
 * One WebSocket kept open across outages: the part every Taskline follower
 * shares (the typed client's followTask, the CLI's watch, the dashboard's
 * feed). What to resume from is the caller's: url() is asked before each
 * attempt. No Node or Bun imports, since the dashboard bundles this file.
 */
import { socketProtocols } from './socket-protocol'

/**
 * What a follower needs of a WebSocket: the browser's, Bun's, Node's (22 and
 * later, or 20 with --experimental-websocket) or the `ws` package's all fit.
 * Handler parameters are `never` so each of those, with its own event types,
 * is assignable here.
 */
export interface WebSocketLike {
  readonly readyState: number
  onopen: ((event: never) => void) | null
  onmessage: ((event: never) => void) | null
  onclose: ((event: never) => void) | null
  send(data: string): void
  close(code?: number, reason?: string): void
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike

// readyState values, the same in every implementation; not WebSocket.OPEN, which a global may not have.
const CONNECTING = 0
const OPEN = 1

/** The global WebSocket, if this runtime has one. */
export function globalWebSocket(): WebSocketConstructor | undefined {
  return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
}

function webSocketOrThrow(given: WebSocketConstructor | undefined): WebSocketConstructor {
  const found = given ?? globalWebSocket()
  if (!found) {
    throw new Error(
      'no WebSocket in this runtime: on Node 20 run with --experimental-websocket (Node 22 has it built in), or pass the WebSocket option (e.g. from the ws package)',
    )
  }
  return found
}

export interface Backoff {
  /** The first wait is at most this long; each failed attempt doubles it. */
  initialMs: number
  maxMs: number
}

/**
 * The wait before retry number `failures` (0 for the first): the step doubles
 * from initialMs up to maxMs, and the wait falls between half the step and the
 * whole, so many clients cut off by one restart do not come back in lock-step.
 */
export function backoffDelay(failures: number, b: Backoff, random: () => number = Math.random): number {
  const step = Math.min(b.initialMs * 2 ** failures, b.maxMs)
  return Math.round(step / 2 + random() * (step / 2))
}

/** Close codes after which reconnecting cannot help: the token was revoked, or the task is gone. */
export const finalCloseCodes: ReadonlySet<number> = new Set([4401, 4404])

/** How one socket ended; code 0 when this side gave up on it (no answer, or dropped). */
export interface SocketEnd {
  code: number
  reason: string
  opened: boolean
}

export type SocketState =
  | { kind: 'connecting'; attempt: number }
  | { kind: 'open' }
  /** Closed; the next attempt (1 for the first since a socket last opened) starts in retryInMs. */
  | { kind: 'waiting'; end: SocketEnd; attempt: number; retryInMs: number }
  /** Holding off until reconnect(): the browser is offline, or refusedForGood said trying again cannot help. */
  | { kind: 'paused'; why: 'offline' | 'refused'; end?: SocketEnd }
  /** No automatic reconnect: close() was called (final), or a final close code came, or giveUpAfterMs passed (reconnect() still can). */
  | { kind: 'stopped'; why: 'closed' | 'final-code' | 'gave-up'; end?: SocketEnd }

export interface ReconnectingSocketOptions {
  /** Where to connect, asked before every attempt so it can carry the latest resume position. */
  url(): string
  /** Offered as the subprotocol beside "taskline": browsers can set that, and URLs (which proxies log) stay clean. */
  token?: string | (() => string | undefined)
  /** Every JSON object the socket sends, pongs included. */
  onMessage(message: Record<string, unknown>): void
  onState?(state: SocketState): void
  backoff?: Partial<Backoff>
  /** A socket that stayed open this long was healthy: the next outage starts the backoff over. */
  healthyAfterMs?: number
  connectTimeoutMs?: number
  /** Sends `ping` every pingEveryMs; a socket silent for silenceMs is taken for dead (a vanished peer sends no close). */
  heartbeat?: { pingEveryMs: number; silenceMs: number }
  /** Stop after this long without an open socket. */
  giveUpAfterMs?: number
  /**
   * Asked when a socket closed without opening: a refused upgrade reaches a
   * WebSocket client as a bare 1006, so the caller can ask over HTTP whether
   * trying again can help. True pauses until reconnect().
   */
  refusedForGood?(): Promise<boolean>
  /** False pauses until reconnect() (a browser that knows it is offline). */
  canConnect?(): boolean
  /** The WebSocket class to use; default the runtime's global one. */
  WebSocket?: WebSocketConstructor
}

/** The events this file reads, typed once: WebSocketLike leaves them open. */
type OnMessage = (event: { data: unknown }) => void
type OnClose = (event: { code: number; reason: string }) => void

interface Connection {
  ws: WebSocketLike
  openedAt: number
  lastHeard: number
  timer?: ReturnType<typeof setTimeout>
}

export class ReconnectingSocket {
  readonly #o: ReconnectingSocketOptions
  readonly #backoff: Backoff
  readonly #WebSocket: WebSocketConstructor
  /** The newest connection, kept after it ends: a callback that finds another here is stale. */
  #latest: Connection | null = null
  #live = false
  #retry: ReturnType<typeof setTimeout> | undefined
  /** Failed attempts since the last healthy socket: the backoff step. */
  #failures = 0
  /** Attempts since a socket last opened. */
  #attempt = 0
  #downSince: number | null = null
  #closed = false

  /** Throws at once when there is no WebSocket to use, rather than failing every attempt. */
  constructor(o: ReconnectingSocketOptions) {
    this.#o = o
    this.#WebSocket = webSocketOrThrow(o.WebSocket)
    this.#backoff = { initialMs: 250, maxMs: 10_000, ...o.backoff }
  }

  start(): this {
    if (!this.#latest) this.#connect()
    return this
  }

  /** Connects now with the backoff started over (a new token, the network back), dropping the current socket. */
  reconnect(): void {
    if (this.#closed) return
    if (this.#live) this.#detach(this.#latest!)
    this.#failures = 0
    this.#attempt = 0
    this.#connect()
  }

  /** Gives up on the current socket as if it had closed, then reconnects as after any outage. */
  drop(reason: string): void {
    if (this.#live) return void this.#lost(this.#latest!, 0, reason)
    if (this.#retry !== undefined && this.#o.canConnect?.() === false) {
      clearTimeout(this.#retry)
      this.#retry = undefined
      this.#emit({ kind: 'paused', why: 'offline' })
    }
  }

  /** Final and idempotent: no reconnect follows. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#retry)
    const c = this.#live ? this.#latest : null
    if (c) this.#detach(c)
    this.#emit({ kind: 'stopped', why: 'closed', end: c ? { code: 1000, reason: 'closed by client', opened: c.openedAt > 0 } : undefined })
  }

  #emit(state: SocketState) {
    this.#o.onState?.(state)
  }

  #connect() {
    clearTimeout(this.#retry)
    this.#retry = undefined
    if (this.#closed || this.#live) return
    if (this.#o.canConnect?.() === false) return this.#emit({ kind: 'paused', why: 'offline' })
    this.#emit({ kind: 'connecting', attempt: this.#attempt })
    const token = typeof this.#o.token === 'function' ? this.#o.token() : this.#o.token
    const c: Connection = { ws: new this.#WebSocket(this.#o.url(), token ? socketProtocols(token) : undefined), openedAt: 0, lastHeard: Date.now() }
    this.#latest = c
    this.#live = true
    c.timer = setTimeout(() => this.#lost(c, 0, 'no answer'), this.#o.connectTimeoutMs ?? 10_000)
    c.ws.onopen = () => this.#opened(c)
    c.ws.onmessage = ((e) => {
      c.lastHeard = Date.now()
      let message: unknown
      try {
        message = JSON.parse(String(e.data))
      } catch {
        return
      }
      if (typeof message === 'object' && message !== null && !Array.isArray(message)) this.#o.onMessage(message as Record<string, unknown>)
    }) satisfies OnMessage
    c.ws.onclose = ((e) => void this.#lost(c, e.code, e.reason)) satisfies OnClose
  }

  #opened(c: Connection) {
    c.openedAt = c.lastHeard = Date.now()
    clearTimeout(c.timer)
    this.#attempt = 0
    this.#downSince = null
    const hb = this.#o.heartbeat
    if (hb) {
      c.timer = setInterval(() => {
        if (Date.now() - c.lastHeard > hb.silenceMs) return void this.#lost(c, 0, 'no answer to ping')
        c.ws.send('ping')
      }, hb.pingEveryMs)
    }
    this.#emit({ kind: 'open' })
  }

  /** Stops listening to a socket and closes it without waiting for a handshake a dead peer would never finish. */
  #detach(c: Connection) {
    if (this.#latest === c) this.#live = false
    clearTimeout(c.timer)
    clearInterval(c.timer)
    c.ws.onopen = c.ws.onmessage = c.ws.onclose = null
    if (c.ws.readyState === CONNECTING || c.ws.readyState === OPEN) c.ws.close(1000)
  }

  async #lost(c: Connection, code: number, reason: string) {
    if (this.#latest !== c || !this.#live) return
    this.#detach(c)
    const end: SocketEnd = { code, reason, opened: c.openedAt > 0 }
    if (end.opened && Date.now() - c.openedAt >= (this.#o.healthyAfterMs ?? 5000)) this.#failures = 0
    // An outage starts when a socket that was open ends, not at the first failure after it.
    if (end.opened) this.#downSince = Date.now()
    this.#downSince ??= Date.now()
    if (finalCloseCodes.has(code)) return this.#emit({ kind: 'stopped', why: 'final-code', end })
    if (this.#o.canConnect?.() === false) return this.#emit({ kind: 'paused', why: 'offline', end })
    if (!end.opened && this.#o.refusedForGood) {
      const refused = await this.#o.refusedForGood()
      if (this.#closed || this.#latest !== c || this.#live || this.#retry !== undefined) return // reconnected or closed meanwhile
      if (refused) return this.#emit({ kind: 'paused', why: 'refused', end })
    }
    const giveUp = this.#o.giveUpAfterMs
    if (giveUp !== undefined && Date.now() - this.#downSince > giveUp) return this.#emit({ kind: 'stopped', why: 'gave-up', end })
    const retryInMs = backoffDelay(this.#failures++, this.#backoff)
    this.#attempt++
    this.#retry = setTimeout(() => this.#connect(), retryInMs)
    this.#emit({ kind: 'waiting', end, attempt: this.#attempt, retryInMs })
  }
}
