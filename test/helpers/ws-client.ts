import { socketProtocols } from '../../src/client/socket-protocol'

/** A WebSocket test client that records every message and can wait for one. */
export interface RecordingSocket {
  messages: any[]
  closed: Promise<{ code: number; reason: string }>
  waitFor(pred: (m: any) => boolean, timeoutMs?: number): Promise<any>
  close(): void
  ws: WebSocket
}

/** With a token, it is offered as a subprotocol beside the fixed name, as browsers send it. */
export function connect(url: string, token?: string): Promise<RecordingSocket> {
  const ws = token === undefined ? new WebSocket(url) : new WebSocket(url, socketProtocols(token))
  const messages: any[] = []
  const waiters = new Set<() => void>()
  ws.onmessage = (e) => {
    const text = String(e.data)
    try {
      messages.push(JSON.parse(text))
    } catch {
      messages.push(text)
    }
    for (const w of waiters) w()
  }
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.onclose = (e) => {
      resolve({ code: e.code, reason: e.reason })
      for (const w of waiters) w()
    }
  })
  const socket: RecordingSocket = {
    ws,
    messages,
    closed,
    close: () => ws.close(),
    waitFor(pred, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(pred)
          if (found !== undefined) {
            waiters.delete(check)
            clearTimeout(timer)
            resolve(found)
          } else if (ws.readyState === WebSocket.CLOSED) {
            waiters.delete(check)
            clearTimeout(timer)
            reject(new Error(`socket closed before the awaited message; got ${JSON.stringify(messages)}`))
          }
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`timed out waiting for a message; got ${JSON.stringify(messages)}`))
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
  }
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve(socket)
    ws.onerror = () => reject(new Error(`could not connect to ${url}`))
  })
}
