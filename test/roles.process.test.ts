import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { Subprocess } from 'bun'
import { join } from 'node:path'
import { configSchema } from '../src/config'
import { readMigrations } from '../src/infra/migrator'
import { admin, createEmptyDatabase as emptyDatabase, createTestDatabase, type TestDatabase } from './helpers/database'
import { redisUrl } from './helpers/env'
import { collect } from './helpers/pipes'
import { deleteKeys, testRedis, uniquePrefix } from './helpers/redis'
import { eventually, postJson } from './helpers/system'
import { freePort } from './helpers/throwaway'
import { connect } from './helpers/ws-client'

/**
 * The roles as a user starts them: `bun run <script>` child processes from the
 * repo root, configured only through the environment. The in-process tests
 * cannot see what lives in src/bin/ and src/commands/: config parsing and its
 * error output, signal handling, exit codes, the migrate CLI.
 */
const root = join(import.meta.dir, '..')
const pkg = (await Bun.file(join(root, 'package.json')).json()) as { scripts: Record<string, string> }

type Script = 'api' | 'worker' | 'migrate'

interface Child {
  proc: Subprocess<'ignore', 'pipe', 'pipe'>
  stdout(): string
  stderr(): string
}

const children = new Set<Child>()
const databases: { drop(): Promise<void> }[] = []
const prefix = uniquePrefix()
const redis = testRedis()
let helperDb: TestDatabase | undefined

/**
 * The caller's environment minus every Taskline variable, plus env: a stray
 * WORKER_CONCURRENCY in the shell that runs the tests must not change what they test.
 */
function roleEnv(env: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !(k in configSchema.shape)) base[k] = v
  return { ...base, ...env }
}

function start(script: Script, env: Record<string, string>): Child & { finished: Promise<void> } {
  const proc = Bun.spawn(['bun', 'run', script], { cwd: root, env: roleEnv(env), stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
  const out = collect(proc.stdout)
  const err = collect(proc.stderr)
  const child = { proc, stdout: out.text, stderr: err.text, finished: Promise.all([out.done, err.done]).then(() => {}) }
  children.add(child)
  return child
}

/** Runs a script to completion; output complete, code and both streams returned. */
async function run(script: Script, env: Record<string, string>, timeoutMs = 15_000) {
  const child = start(script, env)
  const code = await withTimeout(child.proc.exited, timeoutMs, `bun run ${script} did not exit within ${timeoutMs} ms\n${child.stderr()}`)
  await child.finished
  return { code, stdout: child.stdout(), stderr: child.stderr() }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: Timer | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

/** `bun run` is a parent of the role's own bun process: both must go, whatever happened. */
function descendants(pid: number): number[] {
  try {
    const out = Bun.spawnSync(['pgrep', '-P', String(pid)]).stdout.toString()
    const kids = out.split(/\s+/).filter(Boolean).map(Number)
    return kids.flatMap((k) => [k, ...descendants(k)])
  } catch {
    return [] // no pgrep: the role itself still gets SIGTERM through bun run
  }
}

async function killAll() {
  for (const c of children) {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) continue
    const tree = descendants(c.proc.pid)
    c.proc.kill('SIGTERM')
    const stopped = await Promise.race([c.proc.exited.then(() => true), Bun.sleep(3000).then(() => false)])
    for (const pid of [c.proc.pid, ...tree]) {
      try {
        if (!stopped || pid !== c.proc.pid) process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  }
}

/**
 * An empty database. Not createTestDatabase: that one arrives migrated, and the
 * point here is the migrate CLI doing the migrating.
 */
async function createEmptyDatabase(): Promise<string> {
  const database = await emptyDatabase()
  databases.push(database)
  return database.url
}

/** name -> how many ledger rows it has. */
async function ledger(url: string): Promise<Record<string, number>> {
  const { rows } = await admin((c) => c.query('select name, count(*)::int as n from taskline_migrations group by name'), url)
  return Object.fromEntries(rows.map((r: { name: string; n: number }) => [r.name, r.n]))
}

const migrationNames = (await readMigrations()).map((m) => m.name)
const everyMigrationOnce = Object.fromEntries(migrationNames.map((n) => [n, 1]))

let mainDbUrl: string
beforeAll(async () => {
  mainDbUrl = await createEmptyDatabase()
})

afterAll(async () => {
  await killAll()
  await deleteKeys(redis, prefix).catch(() => {})
  redis.disconnect()
  await helperDb?.drop().catch(() => {})
  for (const database of databases) await database.drop().catch(() => {})
})

describe('bun run migrate', () => {
  test('applies every migration to an empty database, then says it is up to date', async () => {
    const first = await run('migrate', { DATABASE_URL: mainDbUrl })
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout.trim()).toBe(`applied ${migrationNames.join(', ')}`)

    const second = await run('migrate', { DATABASE_URL: mainDbUrl })
    expect(second.code, second.stderr).toBe(0)
    expect(second.stdout.trim()).toBe('database is up to date')
    expect(await ledger(mainDbUrl)).toEqual(everyMigrationOnce)
  })

  test('two at once on an empty database: both succeed, one applies, each migration is recorded once', async () => {
    const url = await createEmptyDatabase()
    const [a, b] = await Promise.all([run('migrate', { DATABASE_URL: url }), run('migrate', { DATABASE_URL: url })])
    expect([a.code, b.code], a.stderr + b.stderr).toEqual([0, 0])
    const said = [a.stdout.trim(), b.stdout.trim()].sort()
    expect(said).toEqual([`applied ${migrationNames.join(', ')}`, 'database is up to date'])
    expect(await ledger(url)).toEqual(everyMigrationOnce)
  })

  test('shares its ledger with the test helper: a database createTestDatabase migrated is up to date', async () => {
    helperDb = await createTestDatabase()
    const res = await run('migrate', { DATABASE_URL: helperDb.url })
    expect(res.code, res.stderr).toBe(0)
    expect(res.stdout.trim()).toBe('database is up to date')
  })
})

describe('bun run api + bun run worker', () => {
  let api: ReturnType<typeof start>
  let worker: ReturnType<typeof start>
  let http: string
  const logs = () => `--- api stderr ---\n${api?.stderr()}\n--- worker stderr ---\n${worker?.stderr()}`

  beforeAll(async () => {
    // Idempotent: the roles get a migrated database even if the migrate tests above failed half way.
    const migrated = await run('migrate', { DATABASE_URL: mainDbUrl })
    if (migrated.code !== 0) throw new Error(`migrate failed: ${migrated.stderr}`)
    const port = await freePort()
    const env = {
      DATABASE_URL: mainDbUrl,
      REDIS_URL: redisUrl,
      KEY_PREFIX: prefix,
      HOST: '127.0.0.1',
      PORT: String(port),
      DEMO_WORK_MS: '100',
      LOG_LEVEL: 'info',
      AUTH: 'off', // the seed's curl flow has no token; auth has its own tests
      WORKER_METRICS_PORT: '0',
    }
    api = start('api', env)
    worker = start('worker', env)
    http = `http://127.0.0.1:${port}`
    // Ready means both of its dependencies answered, as a load balancer would check.
    await eventually(async () => (await fetch(`${http}/readyz`)).ok, 15_000, 100).catch((e) => {
      throw new Error(`api never became ready: ${e}\n${logs()}`)
    })
  })

  test('the seed flow: POST answers 201 PENDING, the worker completes it, the list shows it', async () => {
    const { status, body } = await postJson(`${http}/api/tasks/`, { title: 'example task' })
    expect(status).toBe(201)
    expect(body).toMatchObject({ title: 'example task', status: 'PENDING' })

    const done = await eventually(async () => {
      const t = (await (await fetch(`${http}/api/tasks/${body.id}/`)).json()) as any
      return t.status === 'COMPLETED' && t
    }, 15_000).catch((e) => {
      throw new Error(`${e}\n${logs()}`)
    })
    // DEMO_WORK_MS reached the worker through its environment
    expect(done.result).toEqual({ steps: 4, duration_ms: 100 })

    const list = (await (await fetch(`${http}/api/tasks/`)).json()) as any
    expect(list.results.map((t: any) => t.id)).toContain(body.id)
  })

  test('a socket on /ws/tasks/<id>/ sees PROCESSING then COMPLETED', async () => {
    // One second of work, so the socket is surely open before the task starts
    // finishing even on a slow CI machine; the snapshot covers anything earlier.
    const { status, body } = await postJson(`${http}/api/tasks/`, { title: 'watched', payload: { duration_ms: 1000 } })
    expect(status).toBe(201)
    const ws = await connect(`${http.replace(/^http/, 'ws')}/ws/tasks/${body.id}/`)
    try {
      await ws.waitFor((m) => m.status === 'COMPLETED', 15_000)
    } finally {
      ws.close()
    }
    const statuses = ws.messages.map((m) => m.status).filter((s, i, a) => s !== a[i - 1])
    expect(statuses.slice(-2)).toEqual(['PROCESSING', 'COMPLETED'])
    expect(ws.messages.every((m) => m.task_id === body.id)).toBe(true)
  })

  test('SIGTERM stops both roles with exit code 0 within a few seconds', async () => {
    api.proc.kill('SIGTERM')
    worker.proc.kill('SIGTERM')
    const [apiCode, workerCode] = await withTimeout(
      Promise.all([api.proc.exited, worker.proc.exited]),
      5000,
      `roles still running 5 s after SIGTERM\n${logs()}`,
    )
    expect({ api: apiCode, worker: workerCode }, logs()).toEqual({ api: 0, worker: 0 })
    // the server itself stopped, not only the bun run wrapper around it
    await expect(fetch(`${http}/healthz`)).rejects.toThrow()
  })
})

/** The tests' Redis, asked for another database or with other credentials. */
function withRedisPath(path: string, userinfo = ''): string {
  const url = new URL(redisUrl)
  url.pathname = path
  return url.toString().replace('://', `://${userinfo}`)
}

describe('a bad configuration value', () => {
  const cases: [Script, string, string][] = [
    ['api', 'PORT', 'abc'],
    ['api', 'DATABASE_URL', 'mysql://x'],
    ['worker', 'WORKER_CONCURRENCY', '0'],
    ['worker', 'DATABASE_URL', 'mysql://x'],
    // Found only once Redis answers: a database it does not have is refused at start, not retried for ever.
    ['worker', 'REDIS_URL', withRedisPath('/99')],
    ['api', 'REDIS_URL', withRedisPath('/99')],
    ['api', 'REDIS_URL', withRedisPath('/0', 'nobody:wrong@')],
  ]
  test.each(cases)('bun run %s with %s=%s exits non-zero with one line on stderr naming it', async (script, name, value) => {
    const res = await run(script, { [name]: value })
    expect(res.code).not.toBe(0)
    // `bun run` echoes the script it runs ("$ bun src/bin/api.ts"); that line is bun's, not ours.
    const lines = res.stderr.split('\n').filter((l) => l.trim() && l.trim() !== `$ ${pkg.scripts[script]}`)
    expect(lines, res.stderr).toHaveLength(1)
    expect(lines[0]).toContain(name)
    // A URL may hold a password: it is named, never repeated.
    if (name.endsWith('_URL')) expect(lines[0]).not.toContain(value)
    expect(res.code).toBe(2)
  })
})
