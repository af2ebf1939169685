/**
 * Reference (d): the fastest Bun's own publish reaches many sockets on one
 * topic on this machine. Every socket joins one topic; on command, "tasks"
 * are published as bursts of three messages at the offsets the system's own
 * tasks showed (PENDING, PROCESSING, COMPLETED), each as long as theirs and
 * carrying the moment it was due, so a receiver reads as much and times it
 * from then, as the system's events are timed from their commit. No database,
 * no Redis, no JSON work per socket.
 */
import { onCommand, reply } from './child-runtime'
import { wallMs } from '../../src/infra/clock'
import { eventMessage, type Status } from './reference-event'

export interface PublishCommand {
  cmd: 'start'
  tasksPerSecond: number
  /** When each of a task's three events is due, from the task's first (ms). */
  offsetsMs: [number, number, number]
  /** How long each of the three messages is, in bytes (a message cannot be shorter than its fields). */
  bytes?: [number, number, number]
}

const statuses: Status[] = ['PENDING', 'PROCESSING', 'COMPLETED']
const topic = 'feed'

const server = Bun.serve({
  port: Number(process.env.PORT ?? 0),
  hostname: '127.0.0.1',
  fetch: (req, srv) => (srv.upgrade(req) ? undefined : new Response('websocket only', { status: 426 })),
  websocket: {
    sendPings: true,
    idleTimeout: 120,
    open(ws) {
      ws.subscribe(topic)
      ws.send('{"kind":"hello"}')
    },
    message() {},
  },
})

function publishEvent(status: Status, dueAt: number, bytes?: number) {
  server.publish(topic, eventMessage(status, dueAt, bytes))
}

let timer: Timer | undefined
onCommand((m: PublishCommand | { cmd: 'stop' }) => {
  clearInterval(timer)
  if (m.cmd !== 'start') return reply({ type: 'stopped' })
  timer = setInterval(() => {
    const first = wallMs()
    statuses.forEach((status, i) => {
      const offset = m.offsetsMs[i]!
      const bytes = m.bytes?.[i]
      if (offset <= 0) publishEvent(status, first, bytes)
      else setTimeout(() => publishEvent(status, first + offset, bytes), offset)
    })
  }, 1000 / m.tasksPerSecond)
  reply({ type: 'started' })
})
reply({ type: 'ready', port: server.port })
