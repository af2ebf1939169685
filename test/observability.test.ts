import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createTestDatabase, type TestDatabase } from './helpers/database'
import { redisUrl } from './helpers/env'
import { deleteKeys, testRedis, uniquePrefix } from './helpers/redis'
import { connect } from './helpers/ws-client'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'

describe('Prometheus metrics', () => {
  let sys: TestSystem
  beforeAll(async () => {
    sys = await startSystem({ env: { DEMO_WORK_MS: 0 } })
  })
  afterAll(() => sys.stop())

  const scrape = async (url: string) => {
    const res = await fetch(url)
    expect(res.headers.get('content-type')).toContain('text/plain')
    return res.text()
  }
  /** The value of the sample whose name and labels (in any order) match series. */
  const value = (text: string, series: string) => {
    const parse = (s: string) => {
      const m = /^([a-z_]+)\{(.*)\}/.exec(s)
      return m ? `${m[1]}|${m[2]!.split(',').sort().join(',')}` : s
    }
    const want = parse(series)
    const line = text.split('\n').find((l) => !l.startsWith('#') && parse(l.split(' ')[0]!) === want)
    return line === undefined ? undefined : Number(line.split(' ').at(-1))
  }

  test('the API and the worker each serve /metrics with task, queue, socket and HTTP figures', async () => {
    // The API reads events only while a socket is open there: this one makes it count all eight.
    const feed = await connect(`${sys.ws}/ws/tasks/`)
    await feed.waitFor((m) => m.kind === 'hello')
    const ok = (await postJson(`${sys.http}/api/tasks/`, { title: 'fine' })).body
    const bad = (await postJson(`${sys.http}/api/tasks/`, { title: 'bad', payload: { fail: true }, max_attempts: 2 })).body
    const ws = await connect(`${sys.ws}/ws/tasks/${ok.id}`)
    await eventually(async () => {
      const rows = await sys.db.selectFrom('tasks').select('status').where('id', 'in', [ok.id, bad.id]).execute()
      return rows.every((r) => r.status === 'COMPLETED' || r.status === 'FAILED')
    })

    const api = await scrape(`${sys.http}/metrics`)
    expect(value(api, 'taskline_tasks_total{event="created",type="demo",role="api"}')).toBe(2)
    expect(value(api, 'taskline_open_sockets{role="api"}')).toBe(2)
    expect(value(api, 'taskline_events_fanned_out_total{role="api"}')).toBeGreaterThanOrEqual(6)
    // Timed from each change's commit (carried on the stream): a handful of ms here, not an epoch's worth or negative.
    const timed = value(api, 'taskline_event_delivery_seconds_count{role="api"}')!
    expect(timed).toBeGreaterThanOrEqual(6)
    expect(value(api, 'taskline_event_delivery_seconds_sum{role="api"}')! / timed).toBeLessThan(1)
    expect(value(api, 'taskline_http_request_duration_seconds_count{method="POST",route="/api/tasks",status="201",role="api"}')).toBe(2)
    expect(api).toMatch(/taskline_jobs_stream_length\{role="api"\} \d+/)
    ws.close()
    feed.close()

    const worker = await scrape(`${sys.workers[0]!.metricsUrl.href}metrics`)
    expect(value(worker, 'taskline_tasks_total{event="completed",type="demo",role="worker"}')).toBe(1)
    expect(value(worker, 'taskline_tasks_total{event="retried",type="demo",role="worker"}')).toBe(1)
    expect(value(worker, 'taskline_tasks_total{event="failed",type="demo",role="worker"}')).toBe(1)
    expect(value(worker, 'taskline_task_run_seconds_count{type="demo",outcome="completed",role="worker"}')).toBe(1)
    expect(value(worker, 'taskline_task_queue_wait_seconds_count{queue="default",type="demo",role="worker"}')).toBe(3)
    expect(value(worker, 'taskline_jobs_stream_length{role="worker"}')).toBeGreaterThanOrEqual(0)
    expect(worker).toContain('process_resident_memory_bytes')
  })

  test('a cancel and a retry by request are counted where they are made, in the API, under their labels', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks/`, { title: 'cancel me', payload: { duration_ms: 10_000, steps: 100 } })
    expect((await postJson(`${sys.http}/api/tasks/${body.id}/cancel`, {})).status).toBe(200)
    expect((await postJson(`${sys.http}/api/tasks/${body.id}/retry`, {})).status).toBe(200)
    const api = await scrape(`${sys.http}/metrics`)
    expect(value(api, 'taskline_tasks_total{event="cancelled",type="demo",role="api"}')).toBe(1)
    expect(value(api, 'taskline_tasks_total{event="retried",type="demo",role="api"}')).toBe(1)
    await postJson(`${sys.http}/api/tasks/${body.id}/cancel`, {})
  })
})

describe('JSON logs', () => {
  let database: TestDatabase
  const prefix = uniquePrefix()
  const children: Bun.Subprocess[] = []
  beforeAll(async () => {
    database = await createTestDatabase()
  })
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL')
    const redis = testRedis()
    await deleteKeys(redis, prefix)
    redis.disconnect()
    await database.drop()
  })

  test('every HTTP line carries the request id echoed in X-Request-Id; worker lines carry the task id', async () => {
    const port = 20000 + Math.floor(Math.random() * 20000)
    const env = {
      ...process.env,
      DATABASE_URL: database.url,
      REDIS_URL: redisUrl,
      KEY_PREFIX: prefix,
      PORT: String(port),
      HOST: '127.0.0.1',
      AUTH: 'off',
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      DEMO_WORK_MS: '0',
      WORKER_METRICS_PORT: '0',
    }
    const api = Bun.spawn(['bun', 'src/bin/api.ts'], { cwd: `${import.meta.dir}/..`, env, stderr: 'pipe', stdout: 'ignore' })
    const worker = Bun.spawn(['bun', 'src/bin/worker.ts'], { cwd: `${import.meta.dir}/..`, env, stderr: 'pipe', stdout: 'ignore' })
    children.push(api, worker)
    const base = `http://127.0.0.1:${port}`
    await eventually(async () => (await fetch(`${base}/readyz`)).ok, 15_000, 100)
    const created = await fetch(`${base}/api/tasks/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'trace-me-42' },
      body: '{"title":"logged"}',
    })
    expect(created.headers.get('x-request-id')).toBe('trace-me-42')
    const task = (await created.json()) as { id: number }
    const missing = await fetch(`${base}/api/tasks/999999`)
    const generatedId = missing.headers.get('x-request-id')
    expect(generatedId).toBeTruthy()
    await eventually(async () => ((await (await fetch(`${base}/api/tasks/${task.id}`)).json()) as any).status === 'COMPLETED')
    await Bun.sleep(200)
    api.kill('SIGTERM')
    worker.kill('SIGTERM')
    await Promise.all([api.exited, worker.exited])
    const lines = (s: ReadableStream) =>
      new Response(s).text().then((t) =>
        t
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
      )
    const [apiLines, workerLines] = await Promise.all([lines(api.stderr as ReadableStream), lines(worker.stderr as ReadableStream)])

    const http = apiLines.filter((l) => l.msg === 'http')
    expect(http.length).toBeGreaterThanOrEqual(3)
    for (const l of http) expect(typeof l.requestId).toBe('string')
    expect(http.find((l) => l.method === 'POST')).toMatchObject({ requestId: 'trace-me-42', status: 201, role: 'api', level: 'info' })
    expect(http.find((l) => l.status === 404)).toMatchObject({ requestId: generatedId })
    const taskLines = workerLines.filter((l) => l.taskId !== undefined)
    expect(taskLines.length).toBeGreaterThan(0)
    expect(workerLines.every((l) => typeof l.time === 'string' && typeof l.level === 'string' && l.role === 'worker')).toBe(true)
  }, 40_000)
})
