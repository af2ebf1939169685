import { socketProtocols } from '../../src/client/socket-protocol'

/**
 * Opens a WebSocket and resolves with it once its first message (snapshot or
 * hello) arrived. With a token, it goes as browsers send it (docs/security.md):
 * the subprotocol pair socketProtocols(token).
 */
export function openSocket(
  url: string,
  onMessage: (data: string) => void,
  { token, timeoutMs = 30_000 }: { token?: string; timeoutMs?: number } = {},
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = token ? new WebSocket(url, socketProtocols(token)) : new WebSocket(url)
    let greeted = false
    const timer = setTimeout(() => {
      ws.close()
      reject(new Error(`no first message on ${url} within ${timeoutMs} ms`))
    }, timeoutMs)
    ws.onmessage = (ev) => {
      if (!greeted) {
        greeted = true
        clearTimeout(timer)
        resolve(ws)
        return
      }
      onMessage(ev.data as string)
    }
    ws.onerror = () => {
      clearTimeout(timer)
      if (!greeted) reject(new Error(`websocket error on ${url}`))
    }
    ws.onclose = (ev) => {
      clearTimeout(timer)
      if (!greeted) reject(new Error(`websocket closed before its first message: ${ev.code} ${ev.reason}`))
    }
  })
}
