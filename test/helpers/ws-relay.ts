import type { Server } from 'bun'

type RelayData = { url: string; protocols: string[]; up?: WebSocket }

/**
 * A WebSocket relay between a client and the API at `upstream` (ws://…),
 * so a test can drop sockets for real: it records each URL asked for, cut()
 * drops every socket, and while `state.down` it refuses upgrades (503).
 */
export function startWsRelay(upstream: string) {
  const asked: string[] = []
  const upstreams = new Set<WebSocket>()
  const state = { down: false }
  const server: Server<RelayData> = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    fetch(req, srv) {
      const url = new URL(req.url)
      asked.push(url.pathname + url.search)
      if (state.down) return new Response('down', { status: 503 })
      const protocols =
        req.headers
          .get('sec-websocket-protocol')
          ?.split(',')
          .map((p) => p.trim()) ?? []
      const headers = protocols[0] ? { 'Sec-WebSocket-Protocol': protocols[0] } : undefined
      const data: RelayData = { url: `${upstream}${url.pathname}${url.search}`, protocols }
      return srv.upgrade(req, { data, headers }) ? undefined : new Response(null, { status: 400 })
    },
    websocket: {
      open(ws) {
        const up = new WebSocket(ws.data.url, ws.data.protocols)
        ws.data.up = up
        upstreams.add(up)
        up.onmessage = (e) => ws.send(String(e.data))
        up.onclose = () => ws.close(1001, 'relay lost upstream')
      },
      message() {},
      close(ws) {
        ws.data.up?.close()
      },
    },
  })
  return {
    base: `http://127.0.0.1:${server.port}`,
    asked,
    state,
    cut() {
      for (const up of upstreams) up.close()
      upstreams.clear()
    },
    stop: () => server.stop(true),
  }
}
