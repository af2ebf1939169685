/**
 * One HTTP/1.1 request over its own TCP connection, its header lines sent
 * exactly as given: fetch refuses or rewrites some (Host, Connection, Upgrade),
 * and a fuzzer must be able to send what a broken or hostile client would.
 */
export interface RawRequest {
  method: string
  target: string
  headers: [string, string][]
  body?: string
}

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
}

const decoder = new TextDecoder()

export function rawRequest(base: string, req: RawRequest): Promise<RawResponse> {
  const url = new URL(base)
  const lines = [`${req.method} ${req.target} HTTP/1.1`, ...req.headers.map(([k, v]) => `${k}: ${v}`)]
  if (!req.headers.some(([k]) => k.toLowerCase() === 'connection')) lines.push('Connection: close')
  if (req.body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(req.body)}`)
  const head = `${lines.join('\r\n')}\r\n\r\n${req.body ?? ''}`
  let received = Buffer.alloc(0)
  return new Promise((resolve, reject) => {
    let settled = false
    const settle = (eof: boolean) => {
      const parsed = parseResponse(received, req.method === 'HEAD', eof)
      if (!parsed) return false
      settled = true
      resolve(parsed)
      return true
    }
    Bun.connect({
      hostname: url.hostname,
      port: Number(url.port),
      socket: {
        open: (s) => void s.write(head),
        data(s, chunk) {
          received = Buffer.concat([received, chunk])
          if (!settled && settle(false)) s.end()
        },
        close() {
          if (!settled && !settle(true))
            reject(new Error(`connection closed before a whole response: ${JSON.stringify(decoder.decode(received).slice(0, 200))}`))
        },
        error: (_s, e) => reject(e),
      },
    }).catch(reject)
  })
}

/** A whole response, or null while more bytes are due. A 101 is whole at its head: what follows is the socket's. */
function parseResponse(buf: Buffer, isHead: boolean, eof: boolean): RawResponse | null {
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) return null
  const [statusLine = '', ...headerLines] = decoder.decode(buf.subarray(0, end)).split('\r\n')
  const status = Number(statusLine.split(' ')[1])
  const headers: Record<string, string> = {}
  for (const line of headerLines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const rest = buf.subarray(end + 4)
  if (status === 101 || status === 204 || status === 304 || isHead) return { status, headers, body: '' }
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length'])
    return rest.length >= length ? { status, headers, body: decoder.decode(rest.subarray(0, length)) } : null
  }
  if (headers['transfer-encoding']?.includes('chunked')) {
    const body = dechunk(rest)
    return body === null ? null : { status, headers, body }
  }
  return eof ? { status, headers, body: decoder.decode(rest) } : null
}

function dechunk(buf: Buffer): string | null {
  const parts: Buffer[] = []
  let at = 0
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', at)
    if (lineEnd < 0) return null
    const size = parseInt(decoder.decode(buf.subarray(at, lineEnd)), 16)
    if (size === 0) return decoder.decode(Buffer.concat(parts))
    if (buf.length < lineEnd + 2 + size + 2) return null
    parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size))
    at = lineEnd + 2 + size + 2
  }
}
