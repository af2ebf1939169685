import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { Subprocess } from 'bun'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { configSchema } from '../src/config'
import { readMigrations } from '../src/infra/migrator'
import { embeddedMigrations } from '../src/infra/embedded-migrations'
import { serverCommands } from '../src/commands'
import { commands as clientCommands } from '../src/cli/args'
import { admin, createEmptyDatabase as emptyDatabase, createTestDatabase, type TestDatabase } from './helpers/database'
import { redisUrl } from './helpers/env'
import { collect } from './helpers/pipes'
import { deleteKeys, testRedis, uniquePrefix } from './helpers/redis'
import { eventually, postJson } from './helpers/system'
import { freePort } from './helpers/throwaway'

/**
 * The compiled executable as it ships: `bun run build`'s own command (only its
 * --outfile moved to a temp dir), run from an empty directory so nothing can
 * come from the checkout (db/migrations, node_modules, src/dashboard), against
 * the real Postgres and Redis.
 */
const root = join(import.meta.dir, '..')
const pkg = (await Bun.file(join(root, 'package.json')).json()) as { version: string; scripts: Record<string, string> }
const workDir = mkdtempSync(join(tmpdir(), 'taskline-bin-'))
const bin = join(workDir, 'taskline')

const children = new Set<Subprocess<'ignore', 'pipe', 'pipe'>>()
const databases: { drop(): Promise<void> }[] = []
const prefixes = [uniquePrefix(), uniquePrefix()]
const redis = testRedis()
let helperDb: TestDatabase | undefined

/** The caller's environment minus every Taskline and CLI variable, plus env. */
function childEnv(env: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !(k in configSchema.shape) && !k.startsWith('TASKLINE_')) base[k] = v
  }
  // Other tests may run workers at the same time: a free metrics port each.
  return { ...base, WORKER_METRICS_PORT: '0', ...env }
}

function start(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn([bin, ...args], { cwd: workDir, env: childEnv(env), stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
  children.add(proc)
  const out = collect(proc.stdout)
  const err = collect(proc.stderr)
  return { proc, stdout: out.text, stderr: err.text, finished: Promise.all([out.done, err.done]) }
}

/** Runs `taskline args` to completion: exit code and both streams. */
async function run(args: string[], env: Record<string, string> = {}, timeoutMs = 15_000) {
  const child = start(args, env)
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), timeoutMs)
  const code = await child.proc.exited
  clearTimeout(timer)
  await child.finished
  return { code, stdout: child.stdout(), stderr: child.stderr() }
}

/** An empty database: createTestDatabase's arrive migrated, and here the binary must do it. */
async function createEmptyDatabase(): Promise<string> {
  const database = await emptyDatabase()
  databases.push(database)
  return database.url
}

const migrationNames = (await readMigrations()).map((m) => m.name)

beforeAll(async () => {
  const argv = pkg.scripts.build!.split(/\s+/)
  const at = argv.indexOf('--outfile')
  expect(at).toBeGreaterThan(0)
  argv[at + 1] = bin
  const build = Bun.spawn(argv, { cwd: root, stdout: 'pipe', stderr: 'pipe' })
  const [code, err] = await Promise.all([build.exited, new Response(build.stderr).text()])
  if (code !== 0) throw new Error(`${argv.join(' ')} failed (${code}):\n${err}`)
}, 180_000)

afterAll(async () => {
  for (const p of children) {
    if (p.exitCode !== null || p.signalCode !== null) continue
    p.kill('SIGTERM')
    const stopped = await Promise.race([p.exited.then(() => true), Bun.sleep(5000).then(() => false)])
    if (!stopped) p.kill('SIGKILL')
  }
  for (const prefix of prefixes) await deleteKeys(redis, prefix).catch(() => {})
  redis.disconnect()
  await helperDb?.drop().catch(() => {})
  for (const database of databases) await database.drop().catch(() => {})
  rmSync(workDir, { recursive: true, force: true })
}, 30_000)

describe('taskline (no services)', () => {
  test('--version prints the version from package.json', async () => {
    const res = await run(['--version'])
    expect(res.code, res.stderr).toBe(0)
    expect(res.stdout.trim()).toBe(`taskline ${pkg.version}`)
  })

  test('--help lists every role, tool and client command; no command is a usage error', async () => {
    const res = await run(['--help'])
    expect(res.code, res.stderr).toBe(0)
    for (const name of [...Object.keys(serverCommands), ...Object.keys(clientCommands)]) expect(res.stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'))
    expect((await run([])).code).toBe(2)
    const unknown = await run(['frobnicate'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('unknown command "frobnicate"')
  })

  test('ignores a .env in the directory it runs in: settings come from the environment only', async () => {
    const dotenv = join(workDir, '.env')
    await Bun.write(dotenv, 'PORT=not-a-port\n')
    try {
      // Loaded, the bad PORT would be a configuration error (exit 2) naming it.
      const res = await run(['healthcheck'])
      expect(res.code).not.toBe(2)
      expect(res.stderr).not.toContain('not-a-port')
    } finally {
      rmSync(dotenv, { force: true })
    }
  })

  test('the migrations it embeds are db/migrations, in order', async () => {
    expect(embeddedMigrations).toEqual(await readMigrations())
  })
})

describe('taskline migrate', () => {
  test('applies every migration to an empty database, then says it is up to date', async () => {
    const url = await createEmptyDatabase()
    const first = await run(['migrate'], { DATABASE_URL: url })
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout.trim()).toBe(`applied ${migrationNames.join(', ')}`)
    const second = await run(['migrate'], { DATABASE_URL: url })
    expect(second.code, second.stderr).toBe(0)
    expect(second.stdout.trim()).toBe('database is up to date')
    const { rows } = await admin((c) => c.query('select name from taskline_migrations order by name'), url)
    expect(rows.map((r: { name: string }) => r.name)).toEqual(migrationNames)
  }, 30_000)
})

/** The seed's flow against a running api, plus the dashboard and the CLI; headers carry a token when auth is on. */
async function seedFlow(http: string, logs: () => string, headers: Record<string, string> = {}, cliArgs: string[] = []) {
  const { status, body } = await postJson(`${http}/api/tasks/`, { title: 'example task' }, headers)
  expect(status, JSON.stringify(body)).toBe(201)
  expect(body).toMatchObject({ title: 'example task', status: 'PENDING' })
  const done = await eventually(async () => {
    const t = (await (await fetch(`${http}/api/tasks/${body.id}/`, { headers })).json()) as any
    return t.status === 'COMPLETED' && t
  }, 15_000).catch((e) => {
    throw new Error(`${e}\n${logs()}`)
  })
  expect(done.result).toEqual({ steps: 4, duration_ms: 100 })

  // The dashboard: its page and the assets it loads, bundled into the binary.
  const page = await fetch(`${http}/`)
  expect(page.status).toBe(200)
  expect(page.headers.get('content-type')).toContain('text/html')
  const html = await page.text()
  expect(html).toContain('<title>Taskline</title>')
  const assets = [...html.matchAll(/(?:src|href)="(\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]!)
  expect(assets.length).toBeGreaterThan(0)
  // The production bundle embedded at build time: no development server, no source maps (the build's --sourcemap is the server's own).
  expect(html).not.toContain('/_bun/')
  expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
  for (const asset of assets) {
    const res = await fetch(`${http}${asset}`)
    expect(res.status, asset).toBe(200)
    expect(await res.text(), asset).not.toContain('sourceMappingURL')
    expect((await fetch(`${http}${asset}.map`)).status, `${asset}.map`).toBe(404)
  }

  const list = await run(['list', '--url', http, ...cliArgs])
  expect(list.code, list.stderr).toBe(0)
  expect(list.stdout).toMatch(new RegExp(`^\\s*${body.id}\\s+COMPLETED\\b.*example task`, 'm'))
}

async function stopsCleanly(procs: Subprocess[], logs: () => string) {
  for (const p of procs) p.kill('SIGTERM')
  const codes = await Promise.race([
    Promise.all(procs.map((p) => p.exited)),
    Bun.sleep(15_000).then(() => {
      throw new Error(`still running 15 s after SIGTERM\n${logs()}`)
    }),
  ])
  expect(codes, logs()).toEqual(procs.map(() => 0))
}

describe('taskline all', () => {
  let all: ReturnType<typeof start>
  let http: string
  let port: number
  const logs = () => `--- taskline all stderr ---\n${all?.stderr()}`

  beforeAll(async () => {
    port = await freePort()
    all = start(['all'], {
      DATABASE_URL: await createEmptyDatabase(), // `all` migrates it itself
      REDIS_URL: redisUrl,
      KEY_PREFIX: prefixes[0]!,
      HOST: '127.0.0.1',
      PORT: String(port),
      DEMO_WORK_MS: '100',
      AUTH: 'off', // the seed's curl flow has no token
    })
    http = `http://127.0.0.1:${port}`
    await eventually(async () => (await fetch(`${http}/readyz`)).ok, 20_000, 100).catch((e) => {
      throw new Error(`taskline all never became ready: ${e}\n${logs()}`)
    })
  }, 30_000)

  test('migrated the empty database, then started both roles', async () => {
    type Line = { msg: string; role?: string; applied?: string[] }
    const read = () =>
      all
        .stderr()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Line)
    // The api answers /readyz before the worker in the same process has logged its start.
    const lines = await eventually(async () => ((ls) => ls.some((l) => l.msg === 'worker started') && ls)(read()), 10_000, 50)
    expect(lines.find((l) => l.msg === 'migrations applied')?.applied).toEqual(migrationNames)
    expect(lines.some((l) => l.role === 'api' && l.msg === 'api listening')).toBe(true)
    expect(lines.some((l) => l.role === 'worker' && l.msg === 'worker started')).toBe(true)
  })

  test('the seed flow: POST, the worker completes it; GET / is the dashboard; taskline list shows it', async () => {
    await seedFlow(http, logs)
  }, 30_000)

  test('taskline healthcheck says 0 for a ready api on $PORT', async () => {
    const res = await run(['healthcheck'], { PORT: String(port), HOST: '127.0.0.1' })
    expect(res.code, res.stderr).toBe(0)
  })

  test('SIGTERM stops both roles and exits 0; the healthcheck then fails', async () => {
    await stopsCleanly([all.proc], logs)
    await expect(fetch(`${http}/healthz`)).rejects.toThrow()
    const res = await run(['healthcheck'], { PORT: String(port), HOST: '127.0.0.1' })
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('/readyz')
  }, 30_000)
})

describe('taskline api + taskline worker, with a token', () => {
  let api: ReturnType<typeof start>
  let worker: ReturnType<typeof start>
  let http: string
  let token: string
  const logs = () => `--- api stderr ---\n${api?.stderr()}\n--- worker stderr ---\n${worker?.stderr()}`

  beforeAll(async () => {
    helperDb = await createTestDatabase()
    const created = await run(['token', 'create', '--name', 'x'], { DATABASE_URL: helperDb.url })
    expect(created.code, created.stderr).toBe(0)
    token = created.stdout.trim()
    const port = await freePort()
    const env = {
      DATABASE_URL: helperDb.url,
      REDIS_URL: redisUrl,
      KEY_PREFIX: prefixes[1]!,
      HOST: '127.0.0.1',
      PORT: String(port),
      DEMO_WORK_MS: '100',
      AUTH: 'required',
    }
    api = start(['api'], env)
    worker = start(['worker'], env)
    http = `http://127.0.0.1:${port}`
    await eventually(async () => (await fetch(`${http}/readyz`)).ok, 20_000, 100).catch((e) => {
      throw new Error(`taskline api never became ready: ${e}\n${logs()}`)
    })
  }, 30_000)

  test('taskline token create printed a token; the api refuses requests without it', async () => {
    expect(token).toMatch(/^tl_\d+_[A-Za-z0-9_-]{43}$/)
    expect((await postJson(`${http}/api/tasks/`, { title: 'no token' })).status).toBe(401)
    expect((await run(['token', 'list'], { DATABASE_URL: helperDb!.url })).stdout).toMatch(/\tx\towner\t.*\tactive/)
  })

  test('the seed flow with the token, through separate roles; taskline list --token shows it', async () => {
    await seedFlow(http, logs, { authorization: `Bearer ${token}` }, ['--token', token])
  }, 30_000)

  test('SIGTERM stops both with exit code 0', async () => {
    await stopsCleanly([api.proc, worker.proc], logs)
  }, 30_000)
})
