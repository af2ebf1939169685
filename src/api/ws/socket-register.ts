import type { Principal } from '../../domain/tokens/token'
import { topicOf, type TaskSocket } from './socket-session'

export interface ConnectionLimits {
  maxConnections: number
  maxConnectionsPerToken: number
}

/**
 * The sockets open here, by topic (for the slow-socket check of a publish)
 * and by owner (for the per-token limit and the revoked-token check). Once
 * closed (shutdown), it takes no more sockets.
 */
export class SocketRegister {
  readonly sockets = new Set<TaskSocket>()
  private readonly byTopic = new Map<string, Set<TaskSocket>>()
  private readonly perOwner = new Map<number, number>()
  private closed = false

  constructor(private readonly limits: ConnectionLimits) {}

  /** Null if one more socket of this principal may open; otherwise why not. */
  admit(principal: Principal): string | null {
    const { maxConnections, maxConnectionsPerToken } = this.limits
    if (this.sockets.size >= maxConnections) return `this server holds its maximum of ${maxConnections} sockets; retry later or elsewhere`
    const mine = principal.ownerId === null ? 0 : (this.perOwner.get(principal.ownerId) ?? 0)
    if (mine >= maxConnectionsPerToken) return `this token holds its maximum of ${maxConnectionsPerToken} sockets`
    return null
  }

  /** False, and nothing registered, once the register is closed. */
  add(ws: TaskSocket): boolean {
    if (this.closed) return false
    this.sockets.add(ws)
    const topic = topicOf(ws.data)
    this.byTopic.set(topic, (this.byTopic.get(topic) ?? new Set()).add(ws))
    const owner = ws.data.principal.ownerId
    if (owner !== null) this.perOwner.set(owner, (this.perOwner.get(owner) ?? 0) + 1)
    return true
  }

  /** False if the socket was not registered (it was refused, or already removed). */
  remove(ws: TaskSocket): boolean {
    if (!this.sockets.delete(ws)) return false
    const topic = topicOf(ws.data)
    const peers = this.byTopic.get(topic)
    if (peers?.delete(ws) && peers.size === 0) this.byTopic.delete(topic)
    const owner = ws.data.principal.ownerId
    if (owner !== null) {
      const n = (this.perOwner.get(owner) ?? 1) - 1
      if (n <= 0) this.perOwner.delete(owner)
      else this.perOwner.set(owner, n)
    }
    return true
  }

  inTopic(topic: string): Iterable<TaskSocket> {
    return this.byTopic.get(topic) ?? []
  }

  /** The owners with a socket here. */
  owners(): number[] {
    return [...this.perOwner.keys()]
  }

  /** Takes no more sockets; those open stay registered until they close. */
  close(): void {
    this.closed = true
  }
}
