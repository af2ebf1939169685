/**
 * The load processes' HTTP client for closed loops: one keep-alive HTTP/1.1
 * connection per simulated client, one request in flight on it, written from
 * a prepared buffer and answered by reading the status line and
 * Content-Length. The load generator shares the machine's two cores with the
 * system under test: fetch() spent about 33 us of CPU per request here, this
 * client about 14 (as little as wrk, a C generator, which is what pgbench's
 * own C client is compared with). Open loops, which need more requests in
 * flight than connections, still use fetch.
 */
import type { Socket } from 'bun'

export interface Http1Answer {
  status: number
  body: Buffer
}

const headerEnd = Buffer.from('\r\n\r\n')

/** A request written once and sent as many times as asked. */
export function prepareRequest(url: URL, method: string, body?: unknown, headers: Record<string, string> = {}): Buffer {
  const payload = body === undefined ? '' : JSON.stringify(body)
  const head = [
    `${method} ${url.pathname}${url.search} HTTP/1.1`,
    `Host: ${url.host}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ...(body === undefined ? [] : ['Content-Type: application/json']),
    `Content-Length: ${Buffer.byteLength(payload)}`,
  ]
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n${payload}`)
}

interface State {
  received: Buffer | null
  /** What the kernel did not take yet; written on drain. */
  unsent: Buffer | null
  waiting: { resolve: (a: Http1Answer) => void; reject: (e: Error) => void } | null
  closed: boolean
}

/** One answer, if `received` holds a whole one; what follows it stays for the next. */
function takeAnswer(s: State): Http1Answer | null {
  const buf = s.received
  if (!buf) return null
  const end = buf.indexOf(headerEnd)
  if (end < 0) return null
  const head = buf.toString('latin1', 0, end)
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)
  // Every answer of Bun.serve to these requests has a length; anything else would be misread.
  if (!length) throw new Error(`answer without Content-Length: ${head.split('\r\n')[0]}`)
  const total = end + 4 + Number(length[1])
  if (buf.length < total) return null
  s.received = buf.length > total ? buf.subarray(total) : null
  // The server will close after this answer: the next request must not be written into that.
  if (/\r\nconnection:\s*close/i.test(head)) s.closed = true
  return { status: Number(head.slice(9, 12)), body: buf.subarray(end + 4, total) }
}

export async function openHttp1(url: URL) {
  const state: State = { received: null, unsent: null, waiting: null, closed: false }
  const fail = (e: Error) => {
    const w = state.waiting
    state.waiting = null
    w?.reject(e)
  }
  const write = (s: Socket<State>, bytes: Buffer) => {
    const n = s.write(bytes)
    state.unsent = n < bytes.length ? bytes.subarray(Math.max(0, n)) : null
  }
  const socket: Socket<State> = await Bun.connect<State>({
    hostname: url.hostname,
    port: Number(url.port || 80),
    data: state,
    socket: {
      data(_s, chunk) {
        state.received = state.received ? Buffer.concat([state.received, chunk]) : chunk
        try {
          const answer = takeAnswer(state)
          if (!answer) return
          const w = state.waiting
          state.waiting = null
          w?.resolve(answer)
        } catch (e) {
          fail(e as Error)
        }
      },
      drain(s) {
        if (state.unsent) write(s, state.unsent)
      },
      close() {
        state.closed = true
        fail(new Error('connection closed by the server'))
      },
      error(_s, e) {
        fail(e)
      },
    },
  })
  return {
    get closed() {
      return state.closed
    },
    /** Sends a prepared request and resolves with its answer; one at a time. */
    send(request: Buffer): Promise<Http1Answer> {
      if (state.waiting) throw new Error('one request at a time on a connection')
      if (state.closed) return Promise.reject(new Error('connection closed by the server'))
      return new Promise((resolve, reject) => {
        state.waiting = { resolve, reject }
        write(socket, request)
      })
    },
    close: () => socket.end(),
  }
}

type Http1Connection = Awaited<ReturnType<typeof openHttp1>>

/** A closed-loop client's connection, reopened after the server closed it. */
export function reconnecting(url: URL) {
  let conn: Promise<Http1Connection> | null = null
  return {
    async send(request: Buffer): Promise<Http1Answer> {
      try {
        let c = await (conn ??= openHttp1(url))
        if (c.closed) c = await (conn = openHttp1(url))
        return await c.send(request)
      } catch (e) {
        conn = null
        throw e
      }
    },
    async close() {
      if (conn) (await conn.catch(() => null))?.close()
    },
  }
}

/** The header every request to the API carries in the shipped configuration (AUTH=required). */
export const bearer = (token: string | undefined): Record<string, string> => (token ? { Authorization: `Bearer ${token}` } : {})

/**
 * One request, sent again and again by a load process: `byFetch` for open
 * loops (fetch's pool opens as many connections as requests are in flight),
 * `onOwnConnection()` for a closed-loop client, one per client.
 */
export function repeatedRequest(url: URL, method: string, body?: unknown, headers: Record<string, string> = {}) {
  const prepared = prepareRequest(url, method, body, headers)
  const init: RequestInit = {
    method,
    keepalive: true,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  }
  return {
    async byFetch(): Promise<Http1Answer> {
      const res = await fetch(url, init)
      return { status: res.status, body: Buffer.from(await res.arrayBuffer()) }
    },
    onOwnConnection() {
      const conn = reconnecting(url)
      return Object.assign(() => conn.send(prepared), { close: conn.close })
    },
  }
}
