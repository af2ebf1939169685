import { randomBytes } from 'node:crypto'
import net from 'node:net'

export interface PeerResponse {
  status: number
  /** Header names in lower case. */
  headers: Record<string, string>
  body: string
}

export interface PeerRequest {
  method?: string
  headers?: Record<string, string>
  body?: string
  /** The source address to connect from (any 127.x.y.z works on loopback), to act as another client. */
  localAddress?: string
}

/** The headers of a WebSocket handshake, to which a test adds its own. */
export const upgradeHeaders = (extra: Record<string, string> = {}): Record<string, string> => ({
  upgrade: 'websocket',
  connection: 'Upgrade',
  'sec-websocket-key': randomBytes(16).toString('base64'),
  'sec-websocket-version': '13',
  ...extra,
})

/**
 * One HTTP/1.1 request on a fresh TCP connection from a chosen source
 * address, headers exactly as given (fetch rewrites Upgrade and Connection
 * and cannot pick its address; helpers/raw-http.ts cannot either). A 101
 * resolves as soon as its head arrives and the connection is dropped.
 */
export function requestFrom(url: string, o: PeerRequest = {}): Promise<PeerResponse> {
  const u = new URL(url)
  const body = o.body ?? ''
  const headers: Record<string, string> = { host: u.host, ...(o.headers ?? {}) }
  if (!Object.keys(headers).some((h) => h.toLowerCase() === 'connection')) headers.connection = 'close'
  if (body) headers['content-length'] = String(Buffer.byteLength(body))
  const head = [`${o.method ?? 'GET'} ${u.pathname}${u.search} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join('\r\n')
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: u.hostname, port: Number(u.port), localAddress: o.localAddress })
    let received = Buffer.alloc(0)
    const timer = setTimeout(() => finish(new Error(`no complete answer to ${o.method ?? 'GET'} ${url} within 10 s`)), 10_000)
    const finish = (result: PeerResponse | Error) => {
      clearTimeout(timer)
      socket.destroy()
      if (result instanceof Error) reject(result)
      else resolve(result)
    }
    const tryParse = (ended: boolean) => {
      const parsed = parseResponse(received)
      if (parsed && (parsed.response.status === 101 || parsed.complete || ended)) finish(parsed.response)
      else if (ended) finish(new Error(`connection closed before a response: ${received.toString()}`))
    }
    socket.on('connect', () => socket.write(`${head}\r\n\r\n${body}`))
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk as Buffer])
      tryParse(false)
    })
    socket.on('end', () => tryParse(true))
    socket.on('error', (e) => finish(e))
  })
}

function parseResponse(buf: Buffer): { response: PeerResponse; complete: boolean } | null {
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) return null
  const [statusLine = '', ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const rest = buf.subarray(end + 4)
  const length = headers['content-length'] === undefined ? null : Number(headers['content-length'])
  const body = rest.subarray(0, length ?? rest.length).toString()
  return { response: { status: Number(statusLine.split(' ')[1]), headers, body }, complete: length !== null && rest.length >= length }
}
