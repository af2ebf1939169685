import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createToken } from '../src/domain/tokens/token.service'
import { startSystem, type TestSystem } from './helpers/system'

/**
 * taskline/client as Node and TypeScript users get it: `bun run build:package`
 * (scripts/client/build.ts) into a temporary directory, then the built
 * dist/client.js under `node` against the real API, and its declarations
 * type-checked alone in fresh strict projects that have nothing else.
 */

const root = join(import.meta.dir, '..')
let out: string
beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'taskline-client-'))
  const build = Bun.spawnSync(['bun', 'scripts/client/build.ts', join(out, 'dist')], { cwd: root })
  expect(build.stderr.toString()).toBe('')
  expect(build.exitCode).toBe(0)
}, 120_000)
afterAll(() => rm(out, { recursive: true, force: true }))

const read = (path: string) => Bun.file(join(out, 'dist', path)).text()

describe('the built client', () => {
  test('is one module that imports nothing, zod included', async () => {
    const js = await read('client.js')
    expect(js).not.toMatch(/^\s*import\b|\bfrom\s*['"]|\brequire\(/m)
    expect(js).not.toContain('zod')
  })

  test('its declarations refer only to each other: no server module, no swagger, no stylesheet', async () => {
    const files = await readdir(join(out, 'dist/client-types'))
    expect(files).toContain('index.d.ts')
    expect(await read('client.d.ts')).toBe("export * from './client-types/index.js'\n")
    for (const name of files) {
      const text = await read(`client-types/${name}`)
      const specifiers = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*)['"]([^'"]+)['"]/g)].map((m) => m[1])
      expect({ name, outside: specifiers.filter((s) => !/^\.\/[\w.-]+\.js$/.test(s!)) }).toEqual({ name, outside: [] })
      // Comments may name the server's files; the declarations themselves may not.
      const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')
      expect({ name, server: code.match(/swagger|\.css|src\/api|domain\/|zod|kysely|hono/g) }).toEqual({ name, server: null })
    }
  })
})

describe('under node', () => {
  let sys: TestSystem
  let token: string
  beforeAll(async () => {
    sys = await startSystem({ workers: 1, env: { AUTH: 'required', DEMO_WORK_MS: 20 } })
    token = (await createToken(sys.db, 'node', false)).token
  })
  afterAll(() => sys.stop())

  /** Runs an ES module under node with dist/client.js beside it; its last stdout line is JSON. */
  async function runNode(script: string, flags: string[] = []) {
    const file = join(out, `run-${crypto.randomUUID()}.mjs`)
    await Bun.write(file, script)
    const node = Bun.spawn(['node', ...flags, file], { env: { ...process.env, BASE: sys.http, TOKEN: token }, stdout: 'pipe', stderr: 'pipe' })
    const timer = setTimeout(() => node.kill(), 20_000)
    const [stdout, stderr, code] = await Promise.all([new Response(node.stdout).text(), new Response(node.stderr).text(), node.exited])
    clearTimeout(timer)
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    return JSON.parse(stdout.trim().split('\n').at(-1)!)
  }

  test('creates a task, reads it and follows it to COMPLETED', async () => {
    const result = await runNode(
      `import { TasklineClient, isTerminal } from './dist/client.js'
const client = new TasklineClient({ baseUrl: process.env.BASE, token: process.env.TOKEN })
const task = await client.createTask({ title: 'from node', payload: { duration_ms: 100, steps: 4 } })
const got = await client.getTask(task.id)
const seen = []
await new Promise((resolve) => {
  const follower = client.followTask(task.id, {
    onChange(m) {
      seen.push({ kind: m.kind, seq: m.seq, status: m.status })
      if (isTerminal(m.status)) { follower.close(); resolve() }
    },
  })
})
console.log(JSON.stringify({ node: process.version, id: task.id, got: got.id, seen }))
`,
      ['--experimental-websocket'],
    )
    expect(result.node).toMatch(/^v2\d\./)
    expect(result.got).toBe(result.id)
    expect(result.seen[0].kind).toBe('snapshot')
    expect(result.seen.at(-1).status).toBe('COMPLETED')
    const seqs = result.seen.map((m: { seq: number }) => m.seq)
    expect(seqs).toEqual(seqs.map((_: number, i: number) => seqs[0] + i))
  })

  test('without a WebSocket (Node 20, no flag) HTTP works and following says what to do', async () => {
    const result = await runNode(`import { TasklineClient, ApiError } from './dist/client.js'
const client = new TasklineClient({ baseUrl: process.env.BASE, token: process.env.TOKEN })
const ready = await client.ready()
const missing = await client.getTask(999999).catch((e) => e instanceof ApiError && [e.status, e.code])
let error = null
try { client.followTask(1, { onChange() {} }) } catch (e) { error = e.message }
console.log(JSON.stringify({ hasWebSocket: typeof WebSocket !== 'undefined', ready: ready.status, missing, error }))
`)
    expect(result).toMatchObject({ ready: 'ready', missing: [404, 'not_found'] })
    if (!result.hasWebSocket) expect(result.error).toContain('--experimental-websocket')
  })
})

/** What a user's project writes: tsc must accept it with nothing but the declarations, and refuse the marked lines. */
const consumer = `import { ApiError, TasklineClient, createClient, followFeed, isTerminal, type Task, type TaskEvent, type TaskStatus } from './dist/client.js'

const client = new TasklineClient({ baseUrl: 'http://127.0.0.1:8000', token: 'tl_1_x' })
export async function use(): Promise<string[]> {
  const task: Task = await client.createTask({ title: 'typed', payload: { n: 1 } }, { idempotencyKey: 'k' })
  const status: TaskStatus = task.status
  const page = await createClient('http://127.0.0.1:8000').listTasks({ status: 'FAILED', limit: 10 })
  for await (const e of client.taskEvents(task.id, { afterSeq: 0 })) void (e satisfies TaskEvent)
  const types = await client.listTaskTypes()
  const feed = followFeed('http://127.0.0.1:8000', { after: 3, onChange: (e) => void e.cursor })
  feed.close()
  client.followTask(task.id, { onChange: (m) => void (m.kind === 'snapshot' ? m.task.title : m.detail) }).close()
  try {
    await client.deleteTask(task.id)
  } catch (e) {
    if (e instanceof ApiError) return e.details.map((d) => d.path)
  }
  // @ts-expect-error the title is a string
  await client.createTask({ title: 1 })
  // @ts-expect-error no such status
  await client.listTasks({ status: 'DONE' })
  // @ts-expect-error no such method
  client.listWidgets()
  return [status, String(isTerminal(status)), String(page.next), types.results[0]?.payload_schema.type as string]
}
`

const strict = { strict: true, skipLibCheck: false, noEmit: true, target: 'ES2022', noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true }

describe('the declarations alone, in a fresh strict project', () => {
  const projects: Record<string, { compilerOptions: object; packageJson?: object }> = {
    'moduleResolution bundler, browser libs': {
      compilerOptions: { ...strict, module: 'ESNext', moduleResolution: 'bundler', lib: ['ES2022', 'DOM'], types: [] },
    },
    'moduleResolution nodenext, ESM': {
      compilerOptions: { ...strict, module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'], types: [] },
      packageJson: { type: 'module' },
    },
    "Node's types, no DOM": {
      compilerOptions: {
        ...strict,
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2022'],
        types: ['node'],
        typeRoots: [join(root, 'node_modules/@types')],
      },
      packageJson: { type: 'module' },
    },
  }
  for (const [name, project] of Object.entries(projects)) {
    test(`${name}: tsc --noEmit passes`, async () => {
      const dir = await mkdtemp(join(out, 'project-'))
      await cp(join(out, 'dist'), join(dir, 'dist'), { recursive: true })
      await Bun.write(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: project.compilerOptions, include: ['*.ts'] }))
      if (project.packageJson) await Bun.write(join(dir, 'package.json'), JSON.stringify(project.packageJson))
      await Bun.write(join(dir, 'use.ts'), consumer)
      const tsc = Bun.spawnSync(['bunx', 'tsc', '-p', join(dir, 'tsconfig.json')], { cwd: root })
      expect(tsc.stdout.toString() + tsc.stderr.toString()).toBe('')
      expect(tsc.exitCode).toBe(0)
    }, 60_000)
  }
})
