import { afterEach, describe, expect, test } from 'bun:test'
import type { Server, ServerWebSocket } from 'bun'
import { followTask, type TaskMessage } from './follow-task'
import { backoffDelay, ReconnectingSocket, type SocketState } from './reconnecting-socket'

describe('backoffDelay', () => {
  const b = { initialMs: 100, maxMs: 1000 }
  test('doubles per failure, jittered between half the step and the whole', () => {
    expect([0, 1, 2, 3].map((n) => backoffDelay(n, b, () => 0))).toEqual([50, 100, 200, 400])
    expect([0, 1, 2, 3].map((n) => backoffDelay(n, b, () => 1))).toEqual([100, 200, 400, 800])
  })
  test('is capped at maxMs', () => {
    expect(backoffDelay(4, b, () => 1)).toBe(1000)
    expect(backoffDelay(50, b, () => 1)).toBe(1000)
    expect(backoffDelay(50, b, () => 0)).toBe(500)
  })
})

type Plan = (ws: ServerWebSocket<{ n: number }>, n: number) => void

/** A stub API: each socket connection n (0, 1, ...) is handed to plan; every URL and offered subprotocol list is recorded. */
function stubServer(plan: Plan, refuse = false) {
  const asked: { url: string; protocols: string | null }[] = []
  const server: Server<{ n: number }> = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    fetch(req, srv) {
      const url = new URL(req.url)
      asked.push({ url: url.pathname + url.search, protocols: req.headers.get('sec-websocket-protocol') })
      if (refuse) return new Response('no', { status: 401 })
      // A client that offered no subprotocol must get none back, or it fails the handshake.
      const headers = asked.at(-1)!.protocols ? { 'Sec-WebSocket-Protocol': 'taskline' } : undefined
      return srv.upgrade(req, { data: { n: asked.length - 1 }, headers }) ? undefined : new Response(null, { status: 400 })
    },
    websocket: {
      open: (ws) => plan(ws, ws.data.n),
      message() {},
    },
  })
  servers.push(server)
  return { asked, base: `http://127.0.0.1:${server.port}/prefix` }
}

const servers: Server<{ n: number }>[] = []
const stops: (() => void)[] = []
afterEach(() => {
  for (const stop of stops.splice(0)) stop()
  for (const s of servers.splice(0)) s.stop(true)
})

const change = (seq: number, extra: object = {}) =>
  JSON.stringify({ kind: 'change', task_id: 7, seq, status: 'PROCESSING', progress: seq / 10, at: '', cursor: seq, detail: null, ...extra })

async function until(what: string, ok: () => boolean, ms = 3000) {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(5)
  }
}

describe('followTask', () => {
  test('resumes with after_seq after a drop and delivers each seq once; the token rides beside "taskline"', async () => {
    const { asked, base } = stubServer((ws, n) => {
      if (n === 0) {
        ws.send(change(1))
        ws.send(change(2))
        ws.close(1001, 'going away')
      } else {
        // A replay that overlaps what was already delivered.
        for (const seq of [2, 3]) ws.send(change(seq))
      }
    })
    const seen: TaskMessage[] = []
    const f = followTask(base, 7, { token: 's3cret', minDelayMs: 5, onChange: (m) => seen.push(m) })
    stops.push(() => f.close())
    await until('seq 3', () => seen.some((m) => m.seq === 3))
    expect(seen.map((m) => m.seq)).toEqual([1, 2, 3])
    expect(asked.map((a) => a.url)).toEqual(['/prefix/ws/tasks/7/', '/prefix/ws/tasks/7/?after_seq=2'])
    expect(asked.every((a) => a.protocols === 'taskline, s3cret')).toBe(true)
    expect(f.lastSeq).toBe(3)
  })

  test('starts after afterSeq, ignores other tasks and drops what is not newer', async () => {
    const { asked, base } = stubServer((ws) => {
      ws.send(change(4))
      ws.send(change(5))
      ws.send(JSON.stringify({ kind: 'change', task_id: 8, seq: 9 }))
      ws.send(change(6))
    })
    const seen: number[] = []
    const f = followTask(base, 7, { afterSeq: 4, onChange: (m) => seen.push(m.seq) })
    stops.push(() => f.close())
    await until('seq 6', () => seen.includes(6))
    expect(seen).toEqual([5, 6])
    expect(asked[0]!.url).toBe('/prefix/ws/tasks/7/?after_seq=4')
    expect(asked[0]!.protocols).toBeNull()
  })

  for (const code of [4404, 4401]) {
    test(`stops for good on close code ${code}`, async () => {
      const { asked, base } = stubServer((ws) => ws.close(code, 'final'))
      const closes: { code: number; reason: string; reconnecting: boolean }[] = []
      const f = followTask(base, 7, { minDelayMs: 5, onChange() {}, onClose: (c) => closes.push(c) })
      stops.push(() => f.close())
      await until('a close', () => closes.length > 0)
      await Bun.sleep(100)
      expect(closes).toEqual([{ code, reason: 'final', reconnecting: false }])
      expect(asked).toHaveLength(1)
    })
  }

  test('a deleted change is the last thing delivered', async () => {
    const { asked, base } = stubServer((ws) => {
      ws.send(change(3, { deleted: true }))
      ws.close(1000) // without the deletion, an ordinary close to reconnect after
    })
    const seen: TaskMessage[] = []
    const f = followTask(base, 7, { minDelayMs: 5, onChange: (m) => seen.push(m) })
    await until('the deletion', () => seen.length > 0)
    await Bun.sleep(100)
    expect(seen.map((m) => m.seq)).toEqual([3])
    expect(asked).toHaveLength(1)
    f.close()
  })
})

describe('ReconnectingSocket', () => {
  const track = (o: Partial<ConstructorParameters<typeof ReconnectingSocket>[0]> & { url(): string }) => {
    const states: SocketState[] = []
    const s = new ReconnectingSocket({ onMessage() {}, onState: (st) => states.push(st), backoff: { initialMs: 5, maxMs: 20 }, ...o }).start()
    stops.push(() => s.close())
    return { s, states }
  }

  test('a refused upgrade asks refusedForGood, and true pauses it until reconnect()', async () => {
    const { asked, base } = stubServer(() => {}, true)
    let asks = 0
    const { s, states } = track({ url: () => base.replace('http', 'ws'), refusedForGood: async () => ++asks > 0 })
    await until('paused', () => states.some((st) => st.kind === 'paused'))
    await Bun.sleep(50)
    expect(asked).toHaveLength(1)
    expect(states.at(-1)).toMatchObject({ kind: 'paused', why: 'refused', end: { opened: false } })
    s.reconnect()
    await until('a second attempt', () => asked.length === 2)
  })

  test('a silent socket is dropped and reconnected; close() is final', async () => {
    const { asked, base } = stubServer(() => {}) // never answers a ping
    const { s, states } = track({ url: () => base.replace('http', 'ws'), heartbeat: { pingEveryMs: 10, silenceMs: 30 } })
    await until('a reconnect', () => asked.length >= 2)
    expect(states.find((st) => st.kind === 'waiting')).toMatchObject({ end: { code: 0, reason: 'no answer to ping', opened: true }, attempt: 1 })
    s.close()
    const count = asked.length
    await Bun.sleep(100)
    expect(asked.length).toBe(count)
    expect(states.at(-1)).toMatchObject({ kind: 'stopped', why: 'closed' })
  })

  test('gives up after giveUpAfterMs without an open socket', async () => {
    const { base } = stubServer(() => {}, true)
    const { states } = track({ url: () => base.replace('http', 'ws'), giveUpAfterMs: 60 })
    await until('stopped', () => states.some((st) => st.kind === 'stopped'))
    expect(states.at(-1)).toMatchObject({ kind: 'stopped', why: 'gave-up' })
  })
})
