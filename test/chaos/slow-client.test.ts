import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { streamKeys } from '../../src/infra/stream-keys'
import { readFileSync } from 'node:fs'
import { connect as tcpConnect, type Socket } from 'node:net'
import { eventToFields, type TaskEventMessage } from '../../src/domain/task-events/task-event'
import { guarded, startChaosEnv, waitUntil, type ChaosEnv } from '../helpers/processes'
import { afterUpgradeHead, opcodes, readServerFrames, upgradeRequest } from '../helpers/ws-frames'

const MAX_BUFFERED = 65_536
// Far more than the kernel's socket buffers on loopback can hold, and than Bun's hard limit (4x).
const TICKS = 60
const PER_TICK = 3
const TICK_MS = 50
// Each event is over twice the limit, so two unsent ones pass Bun's 4x limit, yet one on top of
// the limit stays under it: a 4008 frame still fits when the send that crossed the limit decides.
const padBytes = () => Math.round(MAX_BUFFERED * (2.2 + Math.random() / 2))
const FAKE_BASE = 900_000_000

let env: ChaosEnv
let raw: Socket | null = null
let good: WebSocket | null = null
beforeAll(async () => {
  env = await startChaosEnv()
}, 30_000)
afterAll(async () => {
  raw?.destroy()
  good?.close()
  await env?.cleanup()
})

/** Resident memory of a process, in bytes, from /proc. */
function rss(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))
  return Number(line?.match(/(\d+)/)?.[1] ?? 0) * 1024
}

/** A WebSocket client by hand over TCP, so the test decides when (and whether) bytes are read. */
async function rawUpgrade(port: number, path: string) {
  const socket = tcpConnect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  const state = { ended: false, closed: false, error: '' }
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.on('end', () => (state.ended = true))
  socket.on('close', () => (state.closed = true))
  socket.on('error', (e) => (state.error = e.message))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  socket.write(upgradeRequest(path, `127.0.0.1:${port}`))
  await waitUntil('the upgrade response', async () => Buffer.concat(chunks).includes('\r\n\r\n'), 5000, 10)
  const frames = afterUpgradeHead(Buffer.concat(chunks))!
  chunks.length = 0
  chunks.push(frames)
  return { socket, chunks, state }
}

/** How many frames arrived, and the close frame's code if one did. */
function parseFrames(buf: Buffer): { frames: number; closeCode: number | null } {
  const { frames } = readServerFrames(buf)
  const close = frames.findIndex((f) => f.opcode === opcodes.close)
  if (close < 0) return { frames: frames.length, closeCode: null }
  const { payload } = frames[close]!
  return { frames: close + 1, closeCode: payload.length >= 2 ? payload.readUInt16BE(0) : 1005 }
}

describe('a WebSocket client that stops reading', () => {
  test(
    "is closed with 4008 (before Bun's own backpressure limit drops it), a reading client still gets every event, and the API stays small",
    guarded(
      () => env,
      async () => {
        const api = await env.spawnApi({ WS_MAX_BUFFERED_BYTES: MAX_BUFFERED })
        const port = Number(new URL(api.url).port)

        // The well-behaved client: counts what it gets rather than keeping tens of MB of JSON.
        const received = new Set<number>()
        good = new WebSocket(`${api.url.replace(/^http/, 'ws')}/ws/tasks/`)
        let goodClosed: number | null = null
        good.onclose = (e) => (goodClosed = e.code)
        await new Promise<void>((resolve, reject) => {
          good!.onerror = () => reject(new Error('good client could not connect'))
          good!.onmessage = (e) => {
            const m = JSON.parse(String(e.data))
            if (m.kind === 'hello') resolve()
            else if (m.task_id >= FAKE_BASE) received.add(m.task_id)
          }
        })

        const slow = await rawUpgrade(port, '/ws/tasks/')
        raw = slow.socket
        // Once its hello has landed the socket is subscribed; from here the server's sends pile up.
        await waitUntil('the slow socket to get its hello', async () => parseFrames(Buffer.concat(slow.chunks)).frames >= 1, 5000, 10)
        slow.socket.pause()

        const baseline = rss(api.pid)
        let peak = baseline
        let sentBytes = 0
        const sentIds: number[] = []
        const events = streamKeys(env.prefix).shards[0]!.events
        const send = async () => {
          const t0 = Date.now()
          for (let tick = 0; tick < TICKS; tick++) {
            const due = t0 + tick * TICK_MS
            if (due > Date.now()) await Bun.sleep(due - Date.now())
            const p = env.rds.pipeline()
            for (let j = 0; j < PER_TICK; j++) {
              const n = tick * PER_TICK + j
              const taskId = FAKE_BASE + n
              // Fake events, exactly as a worker writes them: distinct tasks, each at seq 1.
              const e: TaskEventMessage = {
                kind: 'change',
                task_id: taskId,
                owner_id: null,
                seq: 1,
                status: 'PROCESSING',
                progress: 0,
                at: new Date().toISOString(),
                cursor: n + 1,
                detail: { pad: 'x'.repeat(padBytes()) },
              }
              const fields = eventToFields({ message: e, storedAt: Date.now() })
              sentBytes += fields.at(-1)!.length
              sentIds.push(taskId)
              p.xadd(events, '*', ...fields)
            }
            await p.exec()
            peak = Math.max(peak, rss(api.pid))
          }
        }
        const sending = send()

        // A close frame queued behind unsent data reaches only a client that reads again, and the
        // server gives up on a closing socket after a few seconds: resume as soon as the server says it closed.
        const shed = await api.waitForLog((l) => l.msg === 'closed a socket too slow to read its messages', 30_000)
        slow.socket.resume()
        await waitUntil('the server to end the slow socket', async () => slow.state.ended || slow.state.closed, 15_000, 20)
        const bytes = Buffer.concat(slow.chunks)
        const { frames, closeCode } = parseFrames(bytes)

        await sending
        await waitUntil(
          'the reading client to get every event',
          async () => {
            peak = Math.max(peak, rss(api.pid))
            return received.size === sentIds.length
          },
          30_000,
        )
        const growth = peak - baseline
        console.log(
          `slow-client: close code ${closeCode ?? 'none'} after ${frames} frames, ${(bytes.length / 1e6).toFixed(1)} MB read; server saw ${shed.buffered} bytes unsent (closed by ${shed.by});` +
            ` sent ${sentIds.length} events, ${(sentBytes / 1e6).toFixed(1)} MB; reading client got ${received.size};` +
            ` api rss ${(baseline / 1e6).toFixed(0)} MB -> peak ${(peak / 1e6).toFixed(0)} MB (+${(growth / 1e6).toFixed(1)} MB)`,
        )

        // The client is told why (and so reconnects with after_seq), rather than finding its connection dropped.
        expect(closeCode).toBe(4008)
        expect(shed.code).toBe(4008)
        // Decided by the send that left the data unsent; the half-second sweep wins only by luck.
        expect(shed.by).toBe('send')
        expect(shed.buffered).toBeGreaterThan(MAX_BUFFERED)
        expect(shed.buffered).toBeLessThanOrEqual(MAX_BUFFERED * 4)
        // It was the server that gave up on the client, long before it could have read everything sent.
        expect(bytes.length).toBeLessThan(sentBytes)
        expect(received.size).toBe(sentIds.length)
        expect(goodClosed).toBeNull()
        // Reading and fanning out every event to the good client costs about as much RSS as was sent, before
        // collections catch up; keeping it all for the slow client too would cost that much again.
        expect(growth).toBeLessThan(sentBytes * 1.5)
      },
    ),
    90_000,
  )
})
