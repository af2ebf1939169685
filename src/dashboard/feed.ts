/// <reference lib="dom" />
import { ReconnectingSocket, type SocketState } from '../client/reconnecting-socket'
import type { FeedMessage, TaskEventMessage } from './types'

export type FeedState =
  | { kind: 'connecting' }
  | { kind: 'connected'; reconnects: number }
  | { kind: 'reconnecting'; attempt: number; retryAt: number; reconnects: number }
  | { kind: 'offline'; reason: 'network' | 'unauthorized'; reconnects: number }

export interface FeedOptions {
  /** The token to offer beside "taskline" ('' for none); read at every attempt, so a new one takes effect on restart(). */
  token(): string
  /** A fresh start (no cursor to resume from): the caller should (re)load what it shows. */
  onHello(cursor: number): void
  onChange(event: TaskEventMessage): void
  onState(state: FeedState): void
  /** Asked after a socket failed to open: browsers hide the upgrade's HTTP status, so the caller checks for a 401 over HTTP. */
  isUnauthorized(): Promise<boolean>
}

/** Browsers cannot see a silently dead TCP connection; an application ping every so often can. */
const HEARTBEAT = { pingEveryMs: 20_000, silenceMs: 45_000 }

/** The all-tasks feed on this page's host, resuming after a cursor when there is one. */
function feedUrl(after: number | null): string {
  const u = new URL('/ws/tasks/', location.href)
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:'
  if (after !== null) u.searchParams.set('after', String(after))
  return u.href
}

/** Hands a message on, keeping the cursor the next connection resumes after. */
function deliver(m: FeedMessage, position: { cursor: number | null }, o: FeedOptions) {
  if (m.kind === 'hello') {
    position.cursor = m.cursor
    o.onHello(m.cursor)
  } else if (m.kind === 'change') {
    // Deletions carry cursor 0: they are not stored, so they are no place to resume from.
    if (m.cursor > 0 && (position.cursor === null || m.cursor > position.cursor)) position.cursor = m.cursor
    o.onChange(m)
  }
}

/**
 * The all-tasks feed, kept alive by the shared ReconnectingSocket (jittered
 * backoff, pings, a 401 check when an upgrade fails). It resumes from the last
 * cursor it saw (?after=), so no change is missed across a reconnect, and
 * reconnects at once when the browser comes back online.
 */
export function createFeed(o: FeedOptions) {
  const position = { cursor: null as number | null }
  let reconnects = 0
  let everConnected = false
  let connected = false
  /** Retrying cannot help until the token changes; restart() is called then. */
  let authBlocked = false

  function onState(s: SocketState) {
    connected = s.kind === 'open'
    if (s.kind === 'connecting' && !everConnected && s.attempt === 0) o.onState({ kind: 'connecting' })
    else if (s.kind === 'open') {
      if (everConnected) reconnects++
      everConnected = true
      o.onState({ kind: 'connected', reconnects })
    } else if (s.kind === 'waiting') o.onState({ kind: 'reconnecting', attempt: s.attempt, retryAt: Date.now() + s.retryInMs, reconnects })
    else if (s.kind === 'paused' || (s.kind === 'stopped' && s.why !== 'closed')) {
      // A refused upgrade that HTTP explains as a 401, or a socket closed with 4401 (its token revoked).
      authBlocked = s.why === 'refused' || s.end?.code === 4401
      o.onState({ kind: 'offline', reason: authBlocked ? 'unauthorized' : 'network', reconnects })
    }
  }

  const socket = new ReconnectingSocket({
    url: () => feedUrl(position.cursor),
    token: () => o.token() || undefined,
    onMessage: (m) => deliver(m as FeedMessage, position, o),
    onState,
    backoff: { initialMs: 500, maxMs: 15_000 },
    heartbeat: HEARTBEAT,
    canConnect: () => navigator.onLine,
    refusedForGood: () => o.isUnauthorized(),
  })

  const onOnline = () => {
    if (!connected && !authBlocked) socket.reconnect()
  }
  const onOffline = () => socket.drop('offline')

  return {
    start() {
      addEventListener('online', onOnline)
      addEventListener('offline', onOffline)
      socket.start()
    },
    /** Reconnects now (after a new token, say), keeping the cursor so nothing is missed meanwhile. */
    restart() {
      authBlocked = false
      socket.reconnect()
    },
    stop() {
      removeEventListener('online', onOnline)
      removeEventListener('offline', onOffline)
      socket.close()
    },
  }
}
