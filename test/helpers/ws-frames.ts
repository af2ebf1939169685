/** A frame the server sent: servers never mask, so its payload is the bytes as they are. */
export interface ServerFrame {
  opcode: number
  payload: Buffer
}

export const opcodes = { text: 0x1, close: 0x8, ping: 0x9 } as const

/**
 * Reads the complete frames at the start of buf, for tests that read a
 * socket byte by byte (to stop reading, or to see frames a WebSocket client
 * hides). Returns the frames and the bytes of an incomplete last one.
 */
export function readServerFrames(buf: Buffer): { frames: ServerFrame[]; rest: Buffer } {
  const frames: ServerFrame[] = []
  let at = 0
  while (at + 2 <= buf.length) {
    let len = buf[at + 1]! & 0x7f
    let head = 2
    if (len === 126) {
      if (at + 4 > buf.length) break
      len = buf.readUInt16BE(at + 2)
      head = 4
    } else if (len === 127) {
      if (at + 10 > buf.length) break
      len = Number(buf.readBigUInt64BE(at + 2))
      head = 10
    }
    if (at + head + len > buf.length) break
    frames.push({ opcode: buf[at]! & 0x0f, payload: buf.subarray(at + head, at + head + len) })
    at += head + len
  }
  return { frames, rest: buf.subarray(at) }
}

/** A WebSocket handshake written by hand, for a client that reads the socket itself. */
export function upgradeRequest(path: string, host: string): string {
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64')
  return (
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` + `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
  )
}

/** The bytes after a 101's head, or null while the head is incomplete; an answer other than 101 throws. */
export function afterUpgradeHead(buf: Buffer): Buffer | null {
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) return null
  const head = buf.subarray(0, end).toString()
  if (!head.startsWith('HTTP/1.1 101')) throw new Error(`upgrade refused: ${head}`)
  return buf.subarray(end + 4)
}
