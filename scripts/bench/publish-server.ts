/**
 * Reference (d): the fastest Bun's own publish reaches many sockets on one
 * topic on this machine. Every socket joins one topic; on command, "tasks"
 * are published as bursts of three messages at the offsets the system's own
 * tasks showed (PENDING, PROCESSING, COMPLETED), each carrying the moment it
 * was due, so a receiver times it from then, as the system's events are timed
 * from their commit. No database, no Redis, no JSON work per socket.
 */
import { onCommand, reply } from './child-runtime'
import { wallMs } from '../../src/infra/clock'

export interface PublishCommand {
  cmd: 'start'
  tasksPerSecond: number
  /** When each of a task's three events is due, from the task's first (ms). */
  offsetsMs: [number, number, number]
}

const statuses = ['PENDING', 'PROCESSING', 'COMPLETED'] as const
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

// Shaped like a change event, so a load process reads it as it reads the system's.
function publishEvent(status: (typeof statuses)[number], dueAt: number) {
  server.publish(topic, `{"kind":"change","task_id":1,"owner_id":null,"seq":1,"status":"${status}","progress":0,"sent":${dueAt.toFixed(3)},"detail":null}`)
}

let timer: Timer | undefined
onCommand((m: PublishCommand | { cmd: 'stop' }) => {
  clearInterval(timer)
  if (m.cmd !== 'start') return reply({ type: 'stopped' })
  timer = setInterval(() => {
    const first = wallMs()
    statuses.forEach((status, i) => {
      const offset = m.offsetsMs[i]!
      if (offset <= 0) publishEvent(status, first)
      else setTimeout(() => publishEvent(status, first + offset), offset)
    })
  }, 1000 / m.tasksPerSecond)
  reply({ type: 'started' })
})
reply({ type: 'ready', port: server.port })
