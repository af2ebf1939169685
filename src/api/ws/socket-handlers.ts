import type { Logger } from '../../infra/logger'
import type { Principal } from '../../domain/tokens/token'
import { findRevokedIds } from '../../domain/tokens/token.repository'
import { ReplaySlots } from './replay-slots'
import {
  closeCodes,
  REPLAY_HIGH_WATER,
  REPLAYS_PER_OWNER,
  startFeedSession,
  startTaskSession,
  topicOf,
  type SessionDeps,
  type SocketData,
  type TaskSocket,
} from './socket-session'

export interface SocketLimits {
  maxBufferedBytes: number
  maxConnections: number
  maxConnectionsPerToken: number
  maxMessageBytes: number
  idleTimeoutS: number
}

/**
 * Bun's websocket handlers, and the register of open sockets behind the
 * connection limits. A socket whose unsent data passes maxBufferedBytes (a
 * client that stopped reading) is closed with 4008 by the send that took it
 * there (a half-second sweep catches any other way), so it can never make
 * this process's memory grow without bound; it loses nothing, it reconnects
 * with after_seq. Every two seconds, sockets of revoked tokens are closed
 * with 4401.
 */
export function createSocketHandlers(deps: SessionDeps & { logger: Logger; limits: SocketLimits }) {
  const { limits } = deps
  const sockets = new Set<TaskSocket>()
  const byTopic = new Map<string, Set<TaskSocket>>()
  const perOwner = new Map<number, number>()
  let shuttingDown = false
  // Judged as soon as a send leaves data unsent: past Bun's backpressureLimit the 4008 frame itself would be dropped.
  const shedIfSlow = (ws: TaskSocket, by: 'send' | 'sweep' = 'send') => {
    const buffered = ws.getBufferedAmount()
    if (buffered <= limits.maxBufferedBytes || ws.readyState !== WebSocket.OPEN) return
    deps.logger.info('closed a socket too slow to read its messages', { code: closeCodes.tooSlow, buffered, by, feed: ws.data.feed })
    ws.close(closeCodes.tooSlow, 'client too slow to read its messages; reconnect with after_seq')
  }
  deps.hub.onBackpressure((topic) => {
    for (const ws of byTopic.get(topic) ?? []) shedIfSlow(ws)
  })
  // Well under the 4008 limit, so a client reading at its own pace is never closed for a replay's sake.
  const sessionDeps = {
    ...deps,
    replayHighWater: deps.replayHighWater ?? Math.min(REPLAY_HIGH_WATER, limits.maxBufferedBytes / 4),
    onBackpressure: shedIfSlow,
    replaySlots: deps.replaySlots ?? new ReplaySlots(REPLAYS_PER_OWNER),
  }
  const slowCheck = setInterval(() => {
    for (const ws of sockets) shedIfSlow(ws, 'sweep')
  }, 500)
  const revokedCheck = setInterval(async () => {
    const owners = [...perOwner.keys()]
    try {
      const revoked = new Set(await findRevokedIds(deps.db, owners))
      if (revoked.size === 0) return
      for (const ws of sockets) {
        if (revoked.has(ws.data.principal.ownerId!)) ws.close(closeCodes.tokenRevoked, 'API token revoked')
      }
    } catch {
      // Postgres away: check again next time.
    }
  }, 2000)

  return {
    sockets,
    gate: {
      admit(principal: Principal): string | null {
        if (sockets.size >= limits.maxConnections) return `this server holds its maximum of ${limits.maxConnections} sockets; retry later or elsewhere`
        const mine = principal.ownerId === null ? 0 : (perOwner.get(principal.ownerId) ?? 0)
        if (mine >= limits.maxConnectionsPerToken) return `this token holds its maximum of ${limits.maxConnectionsPerToken} sockets`
        return null
      },
    },
    handlers: {
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
        if (shuttingDown) return ws.close(closeCodes.goingAway, 'server shutting down')
        sockets.add(ws)
        const topic = topicOf(ws.data)
        byTopic.set(topic, (byTopic.get(topic) ?? new Set()).add(ws))
        ws.data.leave = deps.hub.join()
        const owner = ws.data.principal.ownerId
        if (owner !== null) perOwner.set(owner, (perOwner.get(owner) ?? 0) + 1)
        try {
          if (ws.data.feed === 'task') await startTaskSession(ws, sessionDeps, ws.data.taskId, ws.data.afterSeq)
          else await startFeedSession(ws, sessionDeps, ws.data.after)
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
        if (!sockets.delete(ws)) return
        const topic = topicOf(ws.data)
        const peers = byTopic.get(topic)
        if (peers?.delete(ws) && peers.size === 0) byTopic.delete(topic)
        const owner = ws.data.principal.ownerId
        if (owner !== null) {
          const n = (perOwner.get(owner) ?? 1) - 1
          if (n <= 0) perOwner.delete(owner)
          else perOwner.set(owner, n)
        }
        ws.data.stop?.()
        ws.data.leave?.()
        ws.data.drained?.()
      },
    },
    closeAll(code: number, reason: string) {
      shuttingDown = true
      clearInterval(slowCheck)
      clearInterval(revokedCheck)
      for (const ws of sockets) ws.close(code, reason)
    },
  }
}
