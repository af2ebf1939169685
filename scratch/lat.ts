import Redis from 'ioredis'
import { prepareEnvironment, startApi, startWorker, freePort, redisUrl } from '../scripts/bench/system'
import { wallMs } from '../scripts/bench/clock'
import { openSocket } from '../scripts/bench/ws-client'

const env = await prepareEnvironment()
const port = freePort()
const api = await startApi(env, port)
const worker = await startWorker(env, port)
try {
  const sock = new Map<number, number>()
  const red = new Map<number, [number, number]>()
  const ws = await openSocket(`ws://127.0.0.1:${port}/ws/tasks/`, (d) => {
    const t = wallMs()
    if (d.includes('"status":"PENDING"')) return
    const i = d.indexOf('"cursor":')
    sock.set(parseInt(d.slice(i + 9, i + 30), 10), t)
  })
  const r = new Redis(redisUrl)
  let running = true
  ;(async () => {
    let last = '$'
    while (running) {
      const res = (await r.xread('BLOCK', 1000, 'STREAMS', `${env.keyPrefix}events`, last)) as any
      const t = wallMs()
      if (!res) continue
      for (const [id, f] of res[0][1]) {
        last = id
        const c = Number(f[f.indexOf('c') + 1])
        red.set(c, [t, Number(id.split('-')[0])])
      }
    }
  })()
  const N = Number(process.argv[2] ?? 200)
  for (let i = 0; i < N; i++) {
    await fetch(`http://127.0.0.1:${port}/api/tasks/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'x', payload: { duration_ms: 0 } }) })
    await Bun.sleep(50)
  }
  await Bun.sleep(500)
  running = false
  const { rows } = await env.pool.query('select id, (extract(epoch from at)*1000)::float8 as at from task_events')
  const A: number[] = [], B: number[] = [], C: number[] = [], T: number[] = []
  for (const row of rows) {
    const id = Number(row.id)
    const s = sock.get(id), rr = red.get(id)
    if (!s || !rr) continue
    A.push(rr[0] - row.at); B.push(s - rr[0]); C.push(rr[1] - row.at); T.push(s - row.at)
  }
  const pct = (a: number[], p: number) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(s.length * p))]!.toFixed(2) }
  for (const [n, a] of [['at->redisReader', A], ['redisReader->socket', B], ['at->xaddMs', C], ['total', T]] as const)
    console.log(n.padEnd(22), 'p50', pct(a, 0.5), 'p90', pct(a, 0.9), 'p99', pct(a, 0.99), 'max', pct(a, 1), 'n', a.length)
  ws.close(); r.disconnect()
} finally {
  await worker.stop(); await api.stop(); await env.cleanup()
}
