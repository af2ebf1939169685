import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { connect } from './helpers/ws-client'
import { startSystem, type TestSystem } from './helpers/system'
import { afterUpgradeHead, opcodes, readServerFrames } from './helpers/ws-frames'

/**
 * WS_IDLE_TIMEOUT_S: the server pings, a client that answers (every browser,
 * Bun's WebSocket) stays connected however long it says nothing, and a peer
 * that went silent (a dead NAT entry, a frozen process) is dropped instead of
 * holding a socket and its buffers forever. Bun rounds the timeout to its
 * 4-second timer resolution, so this uses 4.
 */
const idleS = 4

let sys: TestSystem
beforeAll(async () => {
  sys = await startSystem({ workers: 0, env: { WS_IDLE_TIMEOUT_S: idleS } })
})
afterAll(() => sys.stop())

/** A WebSocket peer that completes the handshake and then never sends a byte (no pong either). */
function silentPeer(port: number, path: string) {
  const frames: number[] = []
  let buffered: Buffer = Buffer.alloc(0)
  let upgraded = false
  let resolveClosed!: (at: number) => void
  const closed = new Promise<number>((r) => (resolveClosed = r))
  const opened = Bun.connect({
    hostname: '127.0.0.1',
    port,
    socket: {
      open(s) {
        s.write(
          `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
        )
      },
      data(_s, chunk) {
        buffered = Buffer.concat([buffered, chunk])
        if (!upgraded) {
          const after = afterUpgradeHead(buffered)
          if (!after) return
          upgraded = true
          buffered = after
        }
        const { frames: complete, rest } = readServerFrames(buffered)
        buffered = rest
        for (const f of complete) frames.push(f.opcode)
      },
      close() {
        resolveClosed(performance.now())
      },
    },
  })
  return {
    opened,
    closed,
    frames,
    get upgraded() {
      return upgraded
    },
  }
}

describe('idle sockets', () => {
  test('a peer that never answers pings is dropped; a client that answers stays open', async () => {
    const port = Number(new URL(sys.http).port)
    const start = performance.now()
    const silent = silentPeer(port, '/ws/tasks/')
    await silent.opened
    const live = await connect(`${sys.ws}/ws/tasks/`)
    let liveClosed = false
    void live.closed.then(() => (liveClosed = true))

    const closedAt = await Promise.race([silent.closed, Bun.sleep(4 * idleS * 1000).then(() => null)])
    expect(silent.upgraded).toBe(true)
    // Dropped for its silence, not at once, and only after the server asked with a ping.
    expect(closedAt).not.toBeNull()
    expect(closedAt! - start).toBeGreaterThan((idleS / 2) * 1000)
    expect(silent.frames).toContain(opcodes.ping)

    // The answering client has been just as silent, for longer than the timeout.
    await Bun.sleep(Math.max(0, start + (idleS + 3) * 1000 - performance.now()))
    expect(liveClosed).toBe(false)
    expect(live.ws.readyState).toBe(WebSocket.OPEN)
    live.close()
  }, 30_000)
})
