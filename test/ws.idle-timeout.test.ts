import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { connect } from './helpers/ws-client'
import { startSystem, type TestSystem } from './helpers/system'

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
  let buffered = Buffer.alloc(0)
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
          const end = buffered.indexOf('\r\n\r\n')
          if (end < 0) return
          if (!buffered.subarray(0, end).toString().startsWith('HTTP/1.1 101')) throw new Error('upgrade refused')
          upgraded = true
          buffered = buffered.subarray(end + 4)
        }
        // Server frames are unmasked; the ones here are small (7-bit or 16-bit lengths).
        while (buffered.length >= 2) {
          let length = buffered[1]! & 0x7f
          let offset = 2
          if (length === 126) {
            if (buffered.length < 4) return
            length = buffered.readUInt16BE(2)
            offset = 4
          }
          if (buffered.length < offset + length) return
          frames.push(buffered[0]! & 0x0f)
          buffered = buffered.subarray(offset + length)
        }
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

const PING = 0x9

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
    expect(silent.frames).toContain(PING)

    // The answering client has been just as silent, for longer than the timeout.
    await Bun.sleep(Math.max(0, start + (idleS + 3) * 1000 - performance.now()))
    expect(liveClosed).toBe(false)
    expect(live.ws.readyState).toBe(WebSocket.OPEN)
    live.close()
  }, 30_000)
})
