import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { Socket, TCPSocketListener } from 'bun'
import { createTestDatabase, type TestDatabase } from './helpers/database'
import { redisUrl } from './helpers/env'
import { eventually } from './helpers/poll'
import { deleteKeys, testRedis, uniquePrefix } from './helpers/redis'
import { runScript, type ScriptProcess } from './helpers/scripts'
import { freePort } from './helpers/throwaway'

/**
 * What `bun run api` and `bun run dev` serve and how they fail, as real
 * processes: the dashboard is the production build behind the app's own
 * middleware, and dev never keeps one role running without the other.
 */

const prefix = uniquePrefix()
const redis = testRedis()
const started: ScriptProcess[] = []
let database: TestDatabase

beforeAll(async () => {
  database = await createTestDatabase()
})

afterAll(async () => {
  for (const p of started) p.killTree()
  await deleteKeys(redis, prefix).catch(() => {})
  redis.disconnect()
  await database.drop().catch(() => {})
})

function start(script: string, env: Record<string, string>) {
  const child = runScript(script, {
    DATABASE_URL: database.url,
    REDIS_URL: redisUrl,
    KEY_PREFIX: prefix,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    ...env,
  })
  started.push(child)
  return child
}

/** JSON log lines the child wrote to stderr. */
const logLines = (child: ScriptProcess) =>
  child
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>)

describe('bun run api serves the production dashboard through the app', () => {
  let api: ScriptProcess
  let http: string
  let html: string

  beforeAll(async () => {
    const port = await freePort()
    api = start('api', { PORT: String(port), WORKER_METRICS_PORT: '0' })
    http = `http://127.0.0.1:${port}`
    await eventually(async () => (await fetch(`${http}/readyz`)).ok, 30_000, 100, { what: `bun run api on ${http}` }).catch((e) => {
      throw new Error(`${e}\n${api.stderr()}`)
    })
    html = await (await fetch(`${http}/`)).text()
  })

  const assets = () => [...html.matchAll(/(?:src|href)="(\/[^"]*)"/g)].map((m) => m[1]!)

  test("the page and its files carry no trace of Bun's development server and no source map", async () => {
    expect(html).toContain('<title>Taskline</title>')
    expect(html).not.toContain('/_bun/')
    expect(assets().length).toBeGreaterThanOrEqual(2)
    for (const asset of assets()) {
      const res = await fetch(`${http}${asset}`)
      const body = await res.text()
      expect({ asset, status: res.status }).toEqual({ asset, status: 200 })
      expect(body).not.toContain('/_bun/')
      expect(body).not.toContain('sourceMappingURL')
      expect(res.headers.get('sourcemap')).toBeNull()
      const map = await fetch(`${http}${asset}.map`)
      expect({ map: `${asset}.map`, status: map.status }).toEqual({ map: `${asset}.map`, status: 404 })
      expect(((await map.json()) as any).error.code).toBe('not_found')
    }
    const hmr = await fetch(`${http}/_bun/hmr`)
    expect(hmr.status).toBe(404)
    expect(((await hmr.json()) as any).error.code).toBe('not_found')
  })

  test('/, its files and /metrics get the middleware every response gets: secure headers, a request id, an access log line', async () => {
    const paths = ['/', ...assets(), '/metrics']
    for (const path of paths) {
      const res = await fetch(`${http}${path}`)
      await res.arrayBuffer()
      expect({ path, requestId: Boolean(res.headers.get('x-request-id')), nosniff: res.headers.get('x-content-type-options') }).toEqual({
        path,
        requestId: true,
        nosniff: 'nosniff',
      })
      expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN')
    }
    // The page holds a token: no other site may frame it, and it loads nothing but its own files.
    const csp = (await fetch(`${http}/`)).headers.get('content-security-policy') ?? ''
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).toContain("script-src 'self'")
    const logged = await eventually(async () => {
      const seen = new Set(
        logLines(api)
          .filter((l) => l.msg === 'http')
          .map((l) => l.path),
      )
      return paths.every((p) => seen.has(p)) && seen
    }, 10_000).catch(() => new Set(logLines(api).map((l) => l.path)))
    expect([...logged].filter((p) => paths.includes(p)).sort()).toEqual([...paths].sort())
  })

  test('/metrics answers GET only; any other method is a JSON 404', async () => {
    const get = await fetch(`${http}/metrics`)
    expect(get.status).toBe(200)
    expect(await get.text()).toContain('taskline_http_request_duration_seconds')
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await fetch(`${http}/metrics`, { method })
      expect({ method, status: res.status }).toEqual({ method, status: 404 })
      expect(((await res.json()) as any).error.code).toBe('not_found')
    }
  })
})

/** Holds a port with a listener of our own, as another program would. */
function holdPort(): TCPSocketListener<undefined> {
  return Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data(_s: Socket<undefined>) {} } })
}

/**
 * Holds a port with Bun.serve in a process of its own, as another Taskline
 * would (production mode, as the roles run): Bun then sets SO_REUSEPORT unless
 * told not to, so a second server with the defaults would bind the same port
 * beside it instead of failing.
 */
async function holdPortWithBunServer(): Promise<{ port: number; stop(): void }> {
  const holder = Bun.spawn(
    ['bun', '-e', "const s = Bun.serve({ port: 0, development: false, fetch: () => new Response('held') }); console.log(s.port); await new Promise(() => {})"],
    { stdout: 'pipe' },
  )
  const reader = holder.stdout.getReader()
  let text = ''
  while (!text.includes('\n')) {
    const { value, done } = await reader.read()
    if (done) throw new Error('the port holder exited')
    text += new TextDecoder().decode(value)
  }
  reader.releaseLock()
  return { port: Number(text.trim()), stop: () => holder.kill('SIGKILL') }
}

/** Waits for dev to exit by itself; it may take a while on a busy machine, but it must not wait forever. */
async function exitOf(dev: ScriptProcess): Promise<number> {
  const code = await eventually(async () => dev.proc.exitCode !== null && { code: dev.proc.exitCode }, 60_000, 50, {
    what: 'bun run dev to exit after a role died',
  }).catch((e) => {
    throw new Error(`${e}\n--- dev stderr ---\n${dev.stderr()}`)
  })
  await dev.finished
  return code.code
}

describe('bun run dev stops when either role dies', () => {
  test('the worker cannot take WORKER_METRICS_PORT (held by another Bun server): dev says so, stops the api and exits non-zero', async () => {
    const held = await holdPortWithBunServer()
    try {
      const dev = start('dev', { PORT: String(await freePort()), WORKER_METRICS_PORT: String(held.port) })
      const code = await exitOf(dev)
      expect(code).toBe(1) // the dead role's code, not the one dev stopped
      expect(dev.stderr()).toContain(`taskline worker: could not start: WORKER_METRICS_PORT=${held.port}`)
      expect(dev.stderr()).toContain('dev: the worker exited')
      // Neither role outlives dev: the api, which could start, was stopped.
      expect(await eventually(async () => dev.alive().length === 0, 10_000).catch(() => dev.alive())).toBe(true)
    } finally {
      held.stop()
    }
  }, 90_000)

  test('the api cannot take PORT: dev says so, stops the worker and exits non-zero', async () => {
    const held = holdPort()
    try {
      const dev = start('dev', { PORT: String(held.port), WORKER_METRICS_PORT: '0' })
      const code = await exitOf(dev)
      expect(code).toBe(1)
      expect(dev.stderr()).toContain(`taskline api: could not start: PORT=${held.port}`)
      expect(dev.stderr()).toContain('dev: the api exited')
      expect(await eventually(async () => dev.alive().length === 0, 10_000).catch(() => dev.alive())).toBe(true)
    } finally {
      held.stop(true)
    }
  }, 90_000)
})
