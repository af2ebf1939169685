import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createEmptyDatabase, createTestDatabase, type TestDatabase } from './helpers/database'
import { redisUrl } from './helpers/env'
import { spawnRole, waitForHttp, type RoleProcess } from './helpers/processes'
import { deleteKeys, testRedis, uniquePrefix } from './helpers/redis'
import { eventually, postJson } from './helpers/system'
import { freePort } from './helpers/throwaway'

/**
 * Taskline as a user adopts it: packed, installed from the tarball into a
 * project of their own outside this repository, with a handler module of
 * theirs run by a worker from source, by the compiled binary and by the
 * installed package's own `taskline` bin.
 */
setDefaultTimeout(60_000)
const root = join(import.meta.dir, '..')
const project = mkdtempSync(join(tmpdir(), 'taskline-user-'))
const prefix = uniquePrefix()
const redis = testRedis()
let database: TestDatabase
let api: RoleProcess & { url: string }
const workers: RoleProcess[] = []

const handlerModule = `
import { defineHandler, PermanentError } from 'taskline'
import { z } from 'zod'

export default {
  'send-email': defineHandler({
    payload: z.object({ to: z.email(), subject: z.string().default('hello') }),
    async run(p, ctx) {
      await ctx.progress(0.5, 'sending to ' + p.to)
      await ctx.heartbeat()
      return { sent_to: p.to, subject: p.subject, attempt: ctx.attempt }
    },
  }),
  'word-count': defineHandler({
    payload: z.object({ text: z.string().min(1) }),
    timeoutMs: 5000,
    async run(p) {
      if (p.text === 'refuse') throw new PermanentError('refused on purpose')
      return { words: p.text.split(/\\s+/).length }
    },
  }),
}
`

const clientUse = `
import { ApiError, TasklineClient, followTask, type Task } from 'taskline/client'

export async function run(baseUrl: string, token: string): Promise<Task> {
  const client = new TasklineClient({ baseUrl, token })
  const task: Task = await client.createTask({ title: 'from a user project', type: 'send-email', payload: { to: 'a@b.co' } })
  try {
    return await client.getTask(task.id)
  } catch (e) {
    if (e instanceof ApiError) console.error(e.status, e.code)
    throw e
  }
}
export { followTask }
`

async function sh(cmd: string[], cwd: string, timeoutMs = 180_000, env: Record<string, string> = {}) {
  const proc = Bun.spawn(cmd, { cwd, stdout: 'pipe', stderr: 'pipe', env: { ...process.env, NO_COLOR: '1', ...env } })
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  clearTimeout(timer)
  if (code !== 0) throw new Error(`${cmd.join(' ')} exited ${code}:\n${out}\n${err}`)
  return out
}

const roleEnv = () => ({
  DATABASE_URL: database.url,
  REDIS_URL: redisUrl,
  KEY_PREFIX: prefix,
  HOST: '127.0.0.1',
  AUTH: 'off',
  LOG_LEVEL: 'info',
  LOG_FORMAT: 'json',
  RATE_LIMIT_PER_SEC: 0,
  WORKER_METRICS_PORT: 0,
})

async function startWorker(cmd: string[] | undefined, cwd: string | undefined, env: Record<string, string> = {}) {
  const worker = spawnRole('worker', { ...roleEnv(), ...env }, { cmd, cwd })
  workers.push(worker)
  await worker.waitForLog((l) => l.msg === 'worker started', 30_000)
  return worker
}

async function stop(worker: RoleProcess) {
  worker.kill('SIGTERM')
  await worker.exited
}

const getJson = async (path: string) => (await fetch(`${api.url}${path}`)).json() as Promise<any>
const completed = (id: number) => eventually(async () => ((t) => t.status === 'COMPLETED' && t)(await getJson(`/api/tasks/${id}`)), 30_000)

/** Both types run to COMPLETED with their handlers' results, through whichever worker is up. */
async function runsBothTypes(tag: string) {
  const email = await postJson(`${api.url}/api/tasks`, { title: `email ${tag}`, type: 'send-email', payload: { to: 'a@b.co' } })
  const words = await postJson(`${api.url}/api/tasks`, { title: `words ${tag}`, type: 'word-count', payload: { text: 'one two three' } })
  expect([email.status, words.status]).toEqual([201, 201])
  expect((await completed(email.body.id)).result).toEqual({ sent_to: 'a@b.co', subject: 'hello', attempt: 1 })
  expect((await completed(words.body.id)).result).toEqual({ words: 3 })
  return email.body.id as number
}

beforeAll(async () => {
  database = await createTestDatabase()
  await sh(['bun', 'pm', 'pack', '--destination', project, '--quiet'], root)
  const tarball = (await Array.fromAsync(new Bun.Glob('taskline-*.tgz').scan(project)))[0]!
  await Bun.write(join(project, 'package.json'), JSON.stringify({ name: 'user-project', private: true, type: 'module' }))
  await sh(['bun', 'add', `./${tarball}`, 'zod@^4'], project)
  await Bun.write(join(project, 'tasks.ts'), handlerModule)
  const port = await freePort()
  api = Object.assign(spawnRole('api', { ...roleEnv(), PORT: port }), { url: `http://127.0.0.1:${port}` })
  await waitForHttp(`${api.url}/readyz`, 30_000)
}, 300_000)

afterAll(async () => {
  for (const p of [api, ...workers]) p?.kill('SIGKILL')
  await Promise.all([api, ...workers].map((p) => p?.exited))
  await deleteKeys(redis, prefix)
  redis.disconnect()
  await database?.drop()
  rmSync(project, { recursive: true, force: true })
})

describe("a user's project with taskline installed from its tarball", () => {
  test('a worker from source runs its handler module; the API checks payloads against the registered schema', async () => {
    const worker = await startWorker(undefined, undefined, { HANDLERS: join(project, 'tasks.ts') })
    const types = (await getJson('/api/task-types/')).results as any[]
    const email = types.find((t) => t.name === 'send-email')
    expect(email).toMatchObject({ builtin: false, handled: true, timeout_ms: null })
    expect(email.payload_schema.properties.to).toMatchObject({ type: 'string', format: 'email' })
    expect(types.find((t) => t.name === 'word-count')).toMatchObject({ timeout_ms: 5000, handled: true })

    const id = await runsBothTypes('source')
    const history = (await getJson(`/api/tasks/${id}/events`)).results as any[]
    expect(history.some((e) => e.detail?.message === 'sending to a@b.co')).toBe(true)

    const bad = await postJson(`${api.url}/api/tasks`, { title: 'bad', type: 'send-email', payload: { to: 'not an address' } })
    expect(bad.status).toBe(400)
    expect(bad.body.error.details.map((d: any) => d.path)).toContain('payload.to')
    const missing = await postJson(`${api.url}/api/tasks`, { title: 'bad', type: 'word-count', payload: {} })
    expect(missing.status).toBe(400)
    expect(missing.body.error.details).toContainEqual({ path: 'payload.text', message: 'is required' })

    const refused = await postJson(`${api.url}/api/tasks`, { title: 'refuse', type: 'word-count', payload: { text: 'refuse' }, max_attempts: 5 })
    const failed = await eventually(async () => ((t) => t.status === 'FAILED' && t)(await getJson(`/api/tasks/${refused.body.id}`)), 30_000)
    expect(failed).toMatchObject({ attempts: 1, error: 'refused on purpose' })

    await stop(worker)
    // Nobody handles the types now: they stay known, and a task of one is accepted to wait for a worker.
    const after = (await getJson('/api/task-types/')).results as any[]
    expect(after.find((t) => t.name === 'send-email')).toMatchObject({ handled: false, workers: [] })
    const waiting = await postJson(`${api.url}/api/tasks`, { title: 'waits', type: 'send-email', payload: { to: 'c@d.co' } })
    expect(waiting.status).toBe(201)
    const ready = await getJson('/readyz')
    expect(ready.unhandled_types).toEqual(expect.arrayContaining(['send-email', 'word-count']))
    // The next worker to come up runs it.
    await startWorker(undefined, undefined, { HANDLERS: join(project, 'tasks.ts') }).then(async (w) => {
      expect((await completed(waiting.body.id)).result).toMatchObject({ sent_to: 'c@d.co' })
      await stop(w)
    })
  })

  test('the compiled binary imports the handler module from disk: taskline worker --handlers ./tasks.ts', async () => {
    const bin = join(project, 'taskline-bin')
    const build = (await Bun.file(join(root, 'package.json')).json()).scripts.build as string
    // `bun run build`'s own command, only its --outfile moved.
    await sh(build.replace('dist/taskline', bin).split(' '), root)
    const worker = await startWorker([bin, 'worker', '--handlers', './tasks.ts'], project)
    await runsBothTypes('binary')
    await stop(worker)
  })

  test('the image layout: a lone handler file beside the node_modules scripts/handler-deps.ts lays out, run by the binary', async () => {
    const image = mkdtempSync(join(tmpdir(), 'taskline-image-'))
    try {
      await sh(['bun', join(root, 'scripts/handler-deps.ts'), image], root)
      await Bun.write(join(image, 'handlers/tasks.ts'), handlerModule)
      const worker = await startWorker([join(project, 'taskline-bin'), 'worker', '--handlers', join(image, 'handlers/tasks.ts')], '/')
      await runsBothTypes('image')
      await stop(worker)
    } finally {
      rmSync(image, { recursive: true, force: true })
    }
  })

  test("the installed package's own bin: bunx taskline worker --handlers ./tasks.ts", async () => {
    const worker = await startWorker(['bunx', 'taskline', 'worker', '--handlers', './tasks.ts'], project)
    await runsBothTypes('bunx')
    await stop(worker)
  })

  test("the installed package's migrate runs from node_modules (no macro there) and sets up an empty database", async () => {
    const empty = await createEmptyDatabase()
    try {
      const out = await sh(['bunx', 'taskline', 'migrate'], project, 60_000, { DATABASE_URL: empty.url })
      expect(out).toContain('applied 000001_create_tasks.sql')
    } finally {
      await empty.drop()
    }
  })

  test('taskline/client and the handler module type-check in the project, which has only taskline and zod installed', async () => {
    await Bun.write(join(project, 'use-client.ts'), clientUse)
    const tsconfig = {
      compilerOptions: {
        strict: true,
        module: 'Preserve',
        moduleResolution: 'bundler',
        target: 'ES2022',
        lib: ['ES2022', 'DOM'],
        noEmit: true,
        skipLibCheck: false,
        types: [],
      },
      files: ['use-client.ts'],
    }
    await Bun.write(join(project, 'tsconfig.json'), JSON.stringify(tsconfig))
    await sh([join(root, 'node_modules/.bin/tsc'), '-p', join(project, 'tsconfig.json')], project)
    // Node's own resolution too, handlers included: each entry point has declarations of its own.
    const nodenext = {
      compilerOptions: { ...tsconfig.compilerOptions, module: 'NodeNext', moduleResolution: 'NodeNext', noImplicitAny: true },
      files: ['use-client.ts', 'tasks.ts'],
    }
    await Bun.write(join(project, 'tsconfig.nodenext.json'), JSON.stringify(nodenext))
    await sh([join(root, 'node_modules/.bin/tsc'), '-p', join(project, 'tsconfig.nodenext.json')], project)
  })
})
