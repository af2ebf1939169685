/// <reference lib="dom" />
import type { FeedMessage, TaskEventMessage } from './types'

export type FeedState =
  | { kind: 'connecting' }
  | { kind: 'connected'; reconnects: number }
  | { kind: 'reconnecting'; attempt: number; retryAt: number; reconnects: number }
  | { kind: 'offline'; reason: 'network' | 'unauthorized'; reconnects: number }

export interface FeedOptions {
  /** ws(s) URL of the all-tasks feed for the given cursor (undefined: start fresh with a hello). */
  url(after: number | null): string
  /** Subprotocols to offer; the token rides here, not in the URL, so it stays out of access logs. */
  protocols?(): string[] | undefined
  /** A fresh start (no cursor to resume from): the caller should (re)load what it shows. */
  onHello(cursor: number): void
  onChange(event: TaskEventMessage): void
  onState(state: FeedState): void
  /** Asked after a socket failed to open: browsers hide the upgrade's HTTP status, so the caller checks for a 401 over HTTP. */
  isUnauthorized(): Promise<boolean>
}

const FIRST_DELAY_MS = 500
const MAX_DELAY_MS = 15_000
/** A connection that stayed up this long was healthy: the next outage starts the backoff over. */
const HEALTHY_AFTER_MS = 5_000
/** Browsers cannot see a silently dead TCP connection; an application ping every so often can. */
const PING_EVERY_MS = 20_000
const SILENCE_LIMIT_MS = 45_000

/**
 * The all-tasks feed, kept alive: reconnects with jittered exponential backoff
 * and resumes from the last cursor it saw (?after=), so no change is missed
 * across a reconnect. Reconnects at once when the browser comes back online.
 */
export function createFeed(o: FeedOptions) {
  let conn: { socket: WebSocket; openedAt: number; lastHeard: number } | null = null
  let cursor: number | null = null
  let delay = FIRST_DELAY_MS
  let attempt = 0
  let reconnects = 0
  let everConnected = false
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let pingTimer: ReturnType<typeof setInterval> | undefined
  let stopped = true
  let authBlocked = false

  const setState = (s: FeedState) => o.onState(s)

  function open() {
    clearTimeout(retryTimer)
    if (stopped || conn) return
    if (!navigator.onLine) return setState({ kind: 'offline', reason: 'network', reconnects })
    if (!everConnected && attempt === 0) setState({ kind: 'connecting' })
    const c = { socket: new WebSocket(o.url(cursor), o.protocols?.()), openedAt: 0, lastHeard: Date.now() }
    conn = c
    c.socket.onopen = () => {
      c.openedAt = c.lastHeard = Date.now()
      if (everConnected) reconnects++
      everConnected = true
      attempt = 0
      setState({ kind: 'connected', reconnects })
      pingTimer = setInterval(() => {
        if (Date.now() - c.lastHeard > SILENCE_LIMIT_MS) return void lost(c, true)
        c.socket.send('ping')
      }, PING_EVERY_MS)
    }
    c.socket.onmessage = (e) => {
      c.lastHeard = Date.now()
      let m: FeedMessage
      try {
        m = JSON.parse(String(e.data))
      } catch {
        return
      }
      if (m.kind === 'hello') {
        cursor = m.cursor
        o.onHello(m.cursor)
      } else if (m.kind === 'change') {
        // Deletions carry cursor 0: they are not stored, so they are no place to resume from.
        if (m.cursor > 0 && (cursor === null || m.cursor > cursor)) cursor = m.cursor
        o.onChange(m)
      }
    }
    c.socket.onclose = () => void lost(c, false)
  }

  /** Detaches a socket; `abandon` closes it without waiting for a handshake a dead connection would never finish. */
  function detach(c: NonNullable<typeof conn>, abandon: boolean) {
    c.socket.onopen = c.socket.onclose = c.socket.onmessage = null
    if (abandon) c.socket.close()
    if (conn === c) conn = null
    clearInterval(pingTimer)
  }

  async function lost(c: NonNullable<typeof conn>, abandon: boolean) {
    if (conn !== c) return
    detach(c, abandon)
    if (stopped) return
    if (c.openedAt && Date.now() - c.openedAt > HEALTHY_AFTER_MS) delay = FIRST_DELAY_MS
    if (!navigator.onLine) return setState({ kind: 'offline', reason: 'network', reconnects })
    const unauthorized = !c.openedAt && (await o.isUnauthorized())
    if (stopped || conn) return // restarted while we asked
    if (unauthorized) {
      // Retrying cannot help until the token changes; restart() is called then.
      authBlocked = true
      return setState({ kind: 'offline', reason: 'unauthorized', reconnects })
    }
    attempt++
    // Jittered between half and the whole delay, so many dashboards do not reconnect in lock-step.
    const wait = Math.round(delay / 2 + Math.random() * (delay / 2))
    delay = Math.min(delay * 2, MAX_DELAY_MS)
    setState({ kind: 'reconnecting', attempt, retryAt: Date.now() + wait, reconnects })
    retryTimer = setTimeout(open, wait)
  }

  const onOnline = () => {
    if (stopped || conn || authBlocked) return
    delay = FIRST_DELAY_MS
    open()
  }
  const onOffline = () => {
    if (conn) void lost(conn, true)
    else setState({ kind: 'offline', reason: 'network', reconnects })
  }

  return {
    start() {
      if (!stopped) return
      stopped = false
      addEventListener('online', onOnline)
      addEventListener('offline', onOffline)
      open()
    },
    /** Reconnects now (after a new token, say), keeping the cursor so nothing is missed meanwhile. */
    restart() {
      authBlocked = false
      attempt = 0
      delay = FIRST_DELAY_MS
      if (conn) detach(conn, true)
      open()
    },
    stop() {
      stopped = true
      removeEventListener('online', onOnline)
      removeEventListener('offline', onOffline)
      clearTimeout(retryTimer)
      if (conn) detach(conn, true)
    },
  }
}
