/// <reference lib="dom" />
import { type FeedFollower, followFeed } from '../client/follow-feed'
import type { SocketState } from '../client/reconnecting-socket'
import type { TaskEventMessage } from './types'

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

/**
 * The all-tasks feed on this page's host, kept alive by the client's
 * followFeed (jittered backoff, pings, a 401 check when an upgrade fails). It
 * resumes from the last cursor it saw (?after=), so no change is missed across
 * a reconnect, and reconnects at once when the browser comes back online.
 */
export function createFeed(o: FeedOptions) {
  let feed: FeedFollower | null = null
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

  const onOnline = () => {
    if (!connected && !authBlocked) feed?.reconnect()
  }
  const onOffline = () => feed?.drop('offline')

  return {
    start() {
      addEventListener('online', onOnline)
      addEventListener('offline', onOffline)
      feed ??= followFeed(location.origin, {
        token: () => o.token() || undefined,
        onHello: o.onHello,
        onChange: o.onChange,
        onState,
        minDelayMs: 500,
        maxDelayMs: 15_000,
        heartbeat: HEARTBEAT,
        canConnect: () => navigator.onLine,
        refusedForGood: () => o.isUnauthorized(),
      })
    },
    /** Reconnects now (after a new token, say), keeping the cursor so nothing is missed meanwhile. */
    restart() {
      authBlocked = false
      feed?.reconnect()
    },
    stop() {
      removeEventListener('online', onOnline)
      removeEventListener('offline', onOffline)
      feed?.close()
    },
  }
}
