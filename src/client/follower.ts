/**
 * What followTask and followFeed share: their options, the ws(s):// URL on
 * the API's base URL, and the close reports built from the socket's states.
 */
import { ReconnectingSocket, type ReconnectingSocketOptions, type SocketState } from './reconnecting-socket'

export interface FollowerOptions extends Omit<ReconnectingSocketOptions, 'url' | 'onMessage' | 'backoff'> {
  /** Every time a socket closes; reconnecting says whether another attempt follows. */
  onClose?: (info: { code: number; reason: string; reconnecting: boolean }) => void
  /** Backoff bounds in ms (defaults 250 and 10 000). */
  minDelayMs?: number
  maxDelayMs?: number
}

/** The socket URL for a path, keeping any path prefix of baseUrl (a proxy's). */
export const socketUrl = (baseUrl: string, path: string): string => `${baseUrl.replace(/\/+$/, '').replace(/^http/, 'ws')}${path}`

/** A started socket that asks url() before each attempt and hands each JSON message to onMessage. */
export function startFollower(o: FollowerOptions, url: () => string, onMessage: (m: Record<string, unknown>) => void): ReconnectingSocket {
  const socket = new ReconnectingSocket({
    ...o,
    url,
    backoff: { initialMs: o.minDelayMs ?? 250, maxMs: o.maxDelayMs ?? 10_000 },
    onMessage,
    onState(s: SocketState) {
      o.onState?.(s)
      if (s.kind === 'waiting') o.onClose?.({ code: s.end.code, reason: s.end.reason, reconnecting: true })
      else if ((s.kind === 'stopped' || s.kind === 'paused') && s.end) o.onClose?.({ code: s.end.code, reason: s.end.reason, reconnecting: false })
    },
  })
  return socket.start()
}
