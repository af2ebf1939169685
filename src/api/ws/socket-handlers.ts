import type { WebSocketHandler } from 'bun'
import type { Db } from '../../infra/db'
import type { Logger } from '../../infra/logger'
import { findRevokedIds } from '../../domain/tokens/token.repository'
import { ReplaySlots } from './replay-slots'
import {
  closeCodes,
  REPLAY_HIGH_WATER,
  REPLAYS_PER_OWNER,
  startFeedSession,
  startTaskSession,
  type SessionDeps,
  type SocketData,
  type TaskSocket,
} from './socket-session'
import { type ConnectionLimits, SocketRegister } from './socket-register'

export interface SocketLimits extends ConnectionLimits {
  maxBufferedBytes: number
  maxMessageBytes: number
  idleTimeoutS: number
}

type Deps = SessionDeps & { logger: Logger; limits: SocketLimits }
type Shed = (ws: TaskSocket, by?: 'send' | 'sweep') => void

/**
 * Bun's websocket handlers, over the register of open sockets that the
 * connection limits count (socket-register.ts). A socket whose unsent data passes maxBufferedBytes (a
 * client that stopped reading) is closed with 4008 by the send that took it
 * there (a half-second sweep catches any other way), so it can never make
 * this process's memory grow without bound; it loses nothing, it reconnects
 * with after_seq. Every two seconds, sockets of revoked tokens are closed
 * with 4401.
 */
export function createSocketHandlers(deps: Deps) {
  const register = new SocketRegister(deps.limits)
  const shed: Shed = (ws, by = 'send') => shedIfSlow(ws, deps, by)
  deps.hub.onBackpressure((topic) => {
    for (const ws of register.inTopic(topic)) shed(ws)
  })
  // Well under the 4008 limit, so a client reading at its own pace is never closed for a replay's sake.
  const sessionDeps: Deps = {
    ...deps,
    replayHighWater: deps.replayHighWater ?? Math.min(REPLAY_HIGH_WATER, deps.limits.maxBufferedBytes / 4),
    onBackpressure: shed,
    replaySlots: deps.replaySlots ?? new ReplaySlots(REPLAYS_PER_OWNER),
  }
  const stopChecks = startPeriodicChecks(register, deps.db, shed)
  return {
    sockets: register.sockets,
    gate: { admit: register.admit.bind(register) },
    handlers: bunHandlers(register, sessionDeps),
    closeAll(code: number, reason: string) {
      register.close()
      stopChecks()
      for (const ws of register.sockets) ws.close(code, reason)
    },
  }
}

/** Judged as soon as a send leaves data unsent: past Bun's backpressureLimit the 4008 frame itself would be dropped. */
function shedIfSlow(ws: TaskSocket, deps: Pick<Deps, 'logger' | 'limits'>, by: 'send' | 'sweep'): void {
  const buffered = ws.getBufferedAmount()
  if (buffered <= deps.limits.maxBufferedBytes || ws.readyState !== WebSocket.OPEN) return
  deps.logger.info('closed a socket too slow to read its messages', { code: closeCodes.tooSlow, buffered, by, feed: ws.data.feed })
  ws.close(closeCodes.tooSlow, 'client too slow to read its messages; reconnect with after_seq')
}

/** Closes the sockets of revoked tokens. */
async function closeRevoked(register: SocketRegister, db: Db): Promise<void> {
  try {
    const revoked = new Set(await findRevokedIds(db, register.owners()))
    if (revoked.size === 0) return
    for (const ws of register.sockets) {
      if (revoked.has(ws.data.principal.ownerId!)) ws.close(closeCodes.tokenRevoked, 'API token revoked')
    }
  } catch {
    // Postgres away: check again next time.
  }
}

/** The slow-socket sweep and the revoked-token check; returns what stops them. */
function startPeriodicChecks(register: SocketRegister, db: Db, shed: Shed): () => void {
  const slowCheck = setInterval(() => {
    for (const ws of register.sockets) shed(ws, 'sweep')
  }, 500)
  const revokedCheck = setInterval(() => closeRevoked(register, db), 2000)
  return () => {
    clearInterval(slowCheck)
    clearInterval(revokedCheck)
  }
}

/** Bun's handler object: opening starts a session, closing releases what it holds. */
function bunHandlers(register: SocketRegister, deps: Deps) {
  const { limits } = deps
  return {
    data: {} as SocketData,
    // Only a single message larger than the margin can reach this before the 4008 check does; Bun then drops the socket without a close frame.
    backpressureLimit: limits.maxBufferedBytes * 4,
    closeOnBackpressureLimit: true,
    maxPayloadLength: limits.maxMessageBytes,
    idleTimeout: limits.idleTimeoutS,
    sendPings: true,
    // A replay paused by backpressure goes on once the client has read.
    drain(ws: TaskSocket) {
      ws.data.drained?.()
    },
    async open(ws: TaskSocket) {
      // An upgrade that completes after closeAll() would otherwise stay open, and silent, until the process exits.
      if (!register.add(ws)) return ws.close(closeCodes.goingAway, 'server shutting down')
      ws.data.leave = deps.hub.join()
      try {
        if (ws.data.feed === 'task') await startTaskSession(ws, deps, ws.data.taskId, ws.data.afterSeq)
        else await startFeedSession(ws, deps, ws.data.after)
      } catch (e) {
        deps.logger.warn('socket session failed to start', { error: (e as Error).message, feed: ws.data.feed })
        ws.close(closeCodes.internal, 'could not load task history; reconnect')
      }
    },
    /** These sockets only send; a client may ping, anything else is a protocol error. */
    message(ws: TaskSocket, message: string | Buffer) {
      if (typeof message !== 'string') return ws.close(closeCodes.unsupportedData, 'binary messages are not accepted')
      // An application-level ping for clients (browsers) that cannot send protocol pings.
      if (message === 'ping') return void ws.send('{"kind":"pong"}')
      ws.close(closeCodes.policyViolation, 'unexpected message: this socket accepts only "ping"')
    },
    close(ws: TaskSocket) {
      if (!register.remove(ws)) return
      ws.data.stop?.()
      ws.data.leave?.()
      ws.data.drained?.()
    },
  } satisfies WebSocketHandler<SocketData>
}
