import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { Server } from 'bun'
import { sql } from 'kysely'
import pkg from '../package.json' with { type: 'json' }
import { startApiServer } from '../src/api/server'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'

const repoRoot = join(import.meta.dir, '..')

// The CLI is tested here, not authentication: with the auth work in, the system
// runs open (AUTH=off, no rate limit); before it, the config ignores these keys.
// Tokens are checked against a stub server below.
const openApi: Record<string, string> = { AUTH: 'off', RATE_LIMIT_PER_SEC: '0' }

let sys: TestSystem
beforeAll(async () => {
  sys = await startSystem({ env: { DEMO_WORK_MS: 300, ...openApi } })
})
afterAll(() => sys.stop())

interface CliRun {
  code: number
  stdout: string
  stderr: string
}

/** Runs `bun src/bin/cli.ts ...args` with stdout and stderr piped (so not a TTY) and only the env given. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const proc = spawnCli(args, env)
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  return { code, stdout, stderr }
}

function spawnCli(args: string[], env: Record<string, string> = {}) {
  return Bun.spawn(['bun', 'src/bin/cli.ts', ...args], {
    cwd: repoRoot,
    // No TASKLINE_TOKEN leaks in from the developer's shell.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', TASKLINE_URL: sys.http, ...env },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
}

/** Tests that start several CLI processes; explicit, so they do not depend on the preload setting a default. */
const SLOW = 30_000

const lines = (text: string) => text.split('\n').filter((l) => l !== '')
const changeLine = /^(\d+) ([A-Z]+) (\d+)%$/

/** The `seq status progress%` lines of a watch, parsed. */
function changes(stdout: string) {
  return lines(stdout).flatMap((l) => {
    const m = changeLine.exec(l)
    return m ? [{ seq: Number(m[1]), status: m[2]!, percent: Number(m[3]) }] : []
  })
}

function expectContiguous(seqs: number[]) {
  expect(seqs.length).toBeGreaterThan(0)
  expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i))
}

async function taskStatus(id: number): Promise<string> {
  return ((await (await fetch(`${sys.http}/api/tasks/${id}/`)).json()) as any).status
}

describe('taskline CLI (child process against a running system)', () => {
  test(
    '--help and --version',
    async () => {
      const help = await cli(['--help'])
      expect(help.code).toBe(0)
      expect(help.stdout).toContain('Usage: taskline COMMAND')
      for (const c of ['create', 'list', 'show', 'watch', 'cancel', 'retry', 'events']) expect(help.stdout).toContain(`  ${c}`)

      const version = await cli(['--version'])
      expect(version).toEqual({ code: 0, stdout: `taskline ${pkg.version}\n`, stderr: '' })
    },
    SLOW,
  )

  test(
    'create prints the task; --json prints the API body',
    async () => {
      const r = await cli(['create', 'from the cli', '--payload', '{"duration_ms": 0}', '--max-attempts', '2'])
      expect(r.code).toBe(0)
      expect(r.stderr).toBe('')
      expect(r.stdout).toMatch(/^id: +\d+$/m)
      expect(r.stdout).toMatch(/^title: +from the cli$/m)
      expect(r.stdout).toMatch(/^status: +PENDING$/m)
      expect(r.stdout).toMatch(/^attempts: +0\/2$/m)

      const j = await cli(['create', 'json one', '--json', '--type', 'demo'])
      expect(j.code).toBe(0)
      const task = JSON.parse(j.stdout)
      expect(task).toMatchObject({ title: 'json one', type: 'demo', status: 'PENDING', seq: 1 })
      // The API's JSON as sent: the same keys in the same order as a GET.
      const fetched = (await (await fetch(`${sys.http}/api/tasks/${task.id}/`)).json()) as object
      expect(Object.keys(task)).toEqual(Object.keys(fetched))
    },
    SLOW,
  )

  test("create --delay and --at run the task later; a bad --at is the API's 400 naming run_at", async () => {
    const before = Date.now()
    const delayed = await cli(['create', 'in ten minutes', '--delay', '10m', '--json'])
    expect(delayed.code).toBe(0)
    const task = JSON.parse(delayed.stdout)
    expect(Date.parse(task.run_after) - before).toBeGreaterThanOrEqual(600_000)
    expect(Date.parse(task.run_after) - before).toBeLessThan(660_000)
    const at = '2099-01-01T00:00:00.000Z'
    const far = await cli(['create', 'far', '--at', new Date(Date.now() + 86_400_000).toISOString(), '--json'])
    expect(JSON.parse(far.stdout).status).toBe('PENDING')
    const bad = await cli(['create', 'bad', '--at', at])
    expect(bad.code).toBe(1)
    expect(lines(bad.stderr)).toContain('  run_at: run_at must be within a year')
    for (const t of [task, JSON.parse(far.stdout)]) await fetch(`${sys.http}/api/tasks/${t.id}/cancel/`, { method: 'POST' })
  })

  test('create --queue --priority --depends-on place the task; queues lists, pauses and resumes; bad values are usage errors', async () => {
    const paused = await cli(['queues', 'pause', 'cli-q'])
    expect(paused).toMatchObject({ code: 0, stdout: 'queue cli-q paused: 0 ready, 0 running\n' })
    const first = JSON.parse((await cli(['create', 'first', '--queue', 'cli-q', '--json'])).stdout)
    const made = await cli(['create', 'placed', '--queue', 'cli-q', '--priority=-3', '--depends-on', String(first.id), '--json'])
    expect(made.code).toBe(0)
    expect(JSON.parse(made.stdout)).toMatchObject({ queue: 'cli-q', priority: -3, depends_on: [first.id], status: 'PENDING' })
    const listed = await cli(['queues'])
    expect(listed.code).toBe(0)
    expect(lines(listed.stdout)[0]).toMatch(/^QUEUE\s+STATE\s+READY\s+WAITING\s+RUNNING$/)
    expect(lines(listed.stdout)).toContainEqual(expect.stringMatching(/^cli-q\s+paused\s+1\s+1\s+0$/))
    const inQueue = await cli(['list', '--queue', 'cli-q', '--json'])
    expect(JSON.parse(inQueue.stdout).results.map((t: { id: number }) => t.id)).toEqual([JSON.parse(made.stdout).id, first.id])
    expect((await cli(['queues', 'resume', 'cli-q'])).stdout).toStartWith('queue cli-q resumed')
    await eventually(async () => ((await (await fetch(`${sys.http}/api/tasks/${JSON.parse(made.stdout).id}/`)).json()) as any).status === 'COMPLETED', 15_000)
    for (const [args, message] of [
      [['create', 'x', '--priority', 'high'], '--priority must be an integer'],
      [['create', 'x', '--depends-on', '1,,2'], '--depends-on must be task ids'],
      [['queues', 'drain', 'q'], 'queues: unknown action "drain"'],
    ] as const) {
      const r = await cli([...args])
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toContain(message)
    }
    const range = await cli(['create', 'x', '--priority', '11'])
    expect(range.code).toBe(1)
    expect(lines(range.stderr)).toContain('  priority: priority must be at most 10')
  })

  test('create --watch with stdout a pipe prints one line per change, ends COMPLETED and exits 0', async () => {
    const r = await cli(['create', 'watched', '--payload', '{"steps": 3}', '--watch'])
    expect(r.code).toBe(0)
    expect(r.stdout).not.toContain('\r')
    const out = lines(r.stdout)
    expect(out[0]).toMatch(/^created task \d+: watched$/)
    const seen = changes(r.stdout)
    expectContiguous(seen.map((c) => c.seq))
    expect(seen[0]).toEqual({ seq: 1, status: 'PENDING', percent: 0 })
    expect(seen.map((c) => c.percent)).toEqual([...seen.map((c) => c.percent)].sort((a, b) => a - b))
    expect(seen.at(-1)).toMatchObject({ status: 'COMPLETED', percent: 100 })
    expect(seen.some((c) => c.status === 'PROCESSING' && c.percent > 0 && c.percent < 100)).toBe(true)
    expect(out.at(-1)).toBe('result: {"steps":3,"duration_ms":300}')
  })

  test('watch of a task that fails exits 1 with the error on the last line', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks/`, { title: 'doomed', payload: { fail: true }, max_attempts: 1 })
    const r = await cli(['watch', String(body.id)])
    expect(r.code).toBe(1)
    expect(changes(r.stdout).at(-1)?.status).toBe('FAILED')
    expect(lines(r.stdout).at(-1)).toBe('error: demo task failed as asked (payload.fail)')
  })

  test('watch of a finished task answers at once from its current state', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks/`, { title: 'quick', payload: { duration_ms: 0 } })
    await eventually(async () => (await taskStatus(body.id)) === 'COMPLETED')
    const r = await cli(['watch', String(body.id)])
    expect(r.code).toBe(0)
    expect(lines(r.stdout)).toEqual([expect.stringMatching(/^\d+ COMPLETED 100%$/), 'result: {"steps":1,"duration_ms":0}'])
  })

  test(
    'list shows an aligned table, --status filters, --json is the API page',
    async () => {
      const done = (await postJson(`${sys.http}/api/tasks/`, { title: 'listed done', payload: { duration_ms: 0 } })).body
      const waiting = (await postJson(`${sys.http}/api/tasks/`, { title: 'listed slow', payload: { duration_ms: 60_000 } })).body
      await eventually(async () => (await taskStatus(done.id)) === 'COMPLETED')

      const r = await cli(['list', '--limit', '100'])
      expect(r.code).toBe(0)
      const [header, ...rows] = lines(r.stdout)
      expect(header).toMatch(/^ID +STATUS +PROGRESS +ATTEMPTS +TITLE +CREATED$/)
      const row = (id: number) => rows.find((l) => l.trimStart().startsWith(`${id} `))
      expect(row(done.id)).toMatch(/COMPLETED +100% +1\/3 +listed done +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/)
      expect(row(waiting.id)).toMatch(/(PENDING|PROCESSING) +\d+% +[01]\/3 +listed slow /)
      // Aligned: every row's STATUS column starts where the header's does.
      const statusCol = header!.indexOf('STATUS')
      for (const l of rows) expect(l.slice(statusCol)).toMatch(/^[A-Z]+ /)

      const completed = await cli(['list', '--status', 'completed'])
      expect(completed.code).toBe(0)
      const statuses = lines(completed.stdout)
        .slice(1)
        .map((l) => l.trim().split(/ +/)[1])
      expect(statuses.length).toBeGreaterThan(0)
      expect(new Set(statuses)).toEqual(new Set(['COMPLETED']))
      expect(completed.stdout).not.toContain('listed slow')

      const json = await cli(['list', '--status', 'COMPLETED', '--json'])
      const page = JSON.parse(json.stdout)
      expect(page.results.map((t: any) => t.status)).toEqual(page.results.map(() => 'COMPLETED'))
      expect(page).toHaveProperty('next')
      await fetch(`${sys.http}/api/tasks/${waiting.id}/cancel/`, { method: 'POST' })
    },
    SLOW,
  )

  test(
    'show prints key: value lines; a missing id is one error line and exit 1',
    async () => {
      const { body } = await postJson(`${sys.http}/api/tasks/`, { title: 'shown', payload: { duration_ms: 0 } })
      const r = await cli(['show', String(body.id)])
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(new RegExp(`^id: +${body.id}$`, 'm'))
      expect(r.stdout).toMatch(/^title: +shown$/m)
      expect(r.stdout).toMatch(/^payload: +\{"duration_ms":0\}$/m)

      const missing = await cli(['show', '999999'])
      expect(missing).toEqual({ code: 1, stdout: '', stderr: 'error: task 999999 not found (not_found)\n' })
    },
    SLOW,
  )

  test('events lists the history oldest first', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks/`, { title: 'history', payload: { duration_ms: 0 } })
    await eventually(async () => (await taskStatus(body.id)) === 'COMPLETED')
    const r = await cli(['events', String(body.id)])
    expect(r.code).toBe(0)
    const [header, ...rows] = lines(r.stdout)
    expect(header).toMatch(/^SEQ +STATUS +PROGRESS +AT +DETAIL$/)
    expect(rows.map((l) => l.trim().split(/ +/).slice(0, 2))).toEqual([
      ['1', 'PENDING'],
      ['2', 'PROCESSING'],
      ['3', 'COMPLETED'],
    ])
  })

  test(
    'events follows every page of a long history; --limit prints one page and says how to get the next',
    async () => {
      const { id } = await sys.db.insertInto('tasks').values({ title: 'long history', status: 'COMPLETED' }).returning('id').executeTakeFirstOrThrow()
      await sql`insert into task_events (task_id, seq, status, progress) select ${id}, g, 'PROCESSING', 0 from generate_series(1, 2500) g`.execute(sys.db)
      const all = await cli(['events', String(id), '--json'])
      expect(all.code).toBe(0)
      expect(JSON.parse(all.stdout).results.map((e: any) => e.seq)).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1))
      const page = await cli(['events', String(id), '--after-seq', '100', '--limit', '5'])
      expect(page.code).toBe(0)
      expect(
        lines(page.stdout)
          .slice(1)
          .map((l) => l.trim().split(/ +/)[0]),
      ).toEqual(['101', '102', '103', '104', '105'])
      expect(page.stderr).toBe(`more: taskline events ${id} --after-seq 105 --limit 5\n`)
      const bad = await cli(['events', String(id), '--limit', '1001'])
      expect(bad.code).toBe(2)
      expect(bad.stderr).toStartWith('error: --limit must be at most 1000')
    },
    SLOW,
  )

  test(
    'bad usage exits 2 with the usage text',
    async () => {
      const cases = [
        [],
        ['frobnicate'],
        ['show'],
        ['show', 'abc'],
        ['show', '1', '2'],
        ['list', '--payload', '{}'],
        ['list', '--limit', '0'],
        ['list', '--status', 'DONE'],
        ['create', 'x', '--payload', 'nope'],
        ['create', 'x', '--payload', '[1]'],
        ['create', 'x', '--bogus'],
        ['create', 'x', '--max-attempts', 'many'],
        ['create', 'x', '--delay', 'soon'],
        ['create', 'x', '--delay', 'off'],
      ]
      const runs = await Promise.all(cases.map((args) => cli(args)))
      runs.forEach((r, i) => {
        expect({ args: cases[i], code: r.code, stdout: r.stdout }).toEqual({ args: cases[i], code: 2, stdout: '' })
        expect(r.stderr).toMatch(/^error: .+\n\nUsage: taskline /)
      })
      const showAbc = runs[3]!
      expect(lines(showAbc.stderr)[0]).toBe('error: ID must be a positive integer')
      expect(showAbc.stderr).toContain('Usage: taskline show ID')
    },
    SLOW,
  )

  test('a request the API rejects prints the error and one line per invalid field, exit 1', async () => {
    const r = await cli(['create', '   ', '--max-attempts', '1000'])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(lines(r.stderr)).toEqual([
      'error: invalid request (validation_error)',
      '  title: title must not be empty',
      expect.stringMatching(/^ {2}max_attempts: /),
    ])
  })

  test(
    'cancel and retry',
    async () => {
      const { body } = await postJson(`${sys.http}/api/tasks/`, { title: 'to cancel', payload: { duration_ms: 60_000 } })
      const cancelled = await cli(['cancel', String(body.id)])
      expect(cancelled).toEqual({ code: 0, stdout: `task ${body.id} CANCELLED: to cancel\n`, stderr: '' })
      expect(await taskStatus(body.id)).toBe('CANCELLED')

      const again = await cli(['cancel', String(body.id)])
      expect(again.code).toBe(1)
      expect(lines(again.stderr)).toEqual([expect.stringMatching(/^error: .+ \(conflict\)$/)])

      const retried = await cli(['retry', String(body.id), '--json'])
      expect(retried.code).toBe(0)
      expect(JSON.parse(retried.stdout)).toMatchObject({ id: body.id, status: 'PENDING', attempts: 0 })
      await cli(['cancel', String(body.id)])
    },
    SLOW,
  )

  test(
    'the API not running is one clear line and exit 1',
    async () => {
      const closed = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: () => new Response() })
      const url = `http://127.0.0.1:${closed.port}`
      await closed.stop(true)
      for (const args of [['list'], ['watch', '1'], ['create', 'x', '--watch']]) {
        const r = await cli(args, { TASKLINE_URL: url })
        expect({ args, code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
          args,
          code: 1,
          stdout: '',
          stderr: `error: the Taskline API is not reachable at ${url} (connection refused)\n`,
        })
      }
      // --url wins over TASKLINE_URL.
      const r = await cli(['--url', url, 'list'])
      expect(r.stderr).toContain(`not reachable at ${url}`)
    },
    SLOW,
  )

  test('watch survives an API restart: it reconnects with after_seq and misses nothing', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks/`, { title: 'outlives its api', payload: { duration_ms: 3000, steps: 10 } })
    const proc = spawnCli(['watch', String(body.id)])
    let stdout = ''
    let stderr = ''
    const decoder = new TextDecoder()
    const reading = Promise.all([
      (async () => {
        for await (const chunk of proc.stdout) stdout += decoder.decode(chunk)
      })(),
      (async () => {
        for await (const chunk of proc.stderr) stderr += decoder.decode(chunk)
      })(),
    ])
    // The first line comes from an HTTP read; a second one proves the socket is live.
    await eventually(async () => changes(stdout).filter((c) => c.status === 'PROCESSING').length >= 2, 10_000)

    // The API goes away (closing sockets with 1001) while the worker keeps running the task, then comes back on the same port.
    const old = sys.apis[0]!
    await old.close()
    await Bun.sleep(700)
    sys.apis.push(await startApiServer({ ...sys.config, PORT: Number(old.url.port) }))

    // Bounded, so a watch that never ends fails with what it printed instead of a bare timeout.
    const code = await Promise.race([proc.exited, Bun.sleep(20_000).then(() => 'still running' as const)])
    if (code === 'still running') proc.kill()
    await reading
    expect({ code, stdout, stderr }).toMatchObject({ code: 0 })
    expect(stderr).toContain('watch: connection lost')
    const seen = changes(stdout)
    expectContiguous(seen.map((c) => c.seq))
    expect(seen.at(-1)?.status).toBe('COMPLETED')
    expect(lines(stdout).at(-1)).toBe('result: {"steps":10,"duration_ms":3000}')
  }, 30_000)
})

describe('taskline CLI tokens (against a stub API)', () => {
  const seen: { authorization: string | null; wsToken: string | null; protocols: string | null }[] = []
  let stub: Server<undefined>
  const task = {
    id: 7,
    title: 'stubbed',
    type: 'demo',
    payload: {},
    status: 'PROCESSING',
    attempts: 1,
    max_attempts: 3,
    progress: 0.5,
    seq: 3,
    result: null,
    error: null,
    created_at: '2026-01-01T00:00:00.000Z',
  }

  beforeAll(() => {
    stub = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch(req, server) {
        const url = new URL(req.url)
        const protocols = req.headers.get('sec-websocket-protocol')
        seen.push({ authorization: req.headers.get('authorization'), wsToken: url.searchParams.get('token'), protocols })
        const offered = protocols?.split(',').map((p) => p.trim())
        const token = req.headers.get('authorization') ?? (offered?.[0] === 'taskline' ? `Bearer ${offered[1]}` : null)
        if (token !== 'Bearer s3cret') return Response.json({ error: { code: 'unauthorized', message: 'an API token is required' } }, { status: 401 })
        if (url.pathname === '/ws/tasks/7/' && server.upgrade(req, { headers: { 'Sec-WebSocket-Protocol': 'taskline' } })) return undefined
        return Response.json(task)
      },
      websocket: {
        open(ws) {
          ws.send(
            JSON.stringify({
              kind: 'change',
              task_id: 7,
              seq: 4,
              status: 'COMPLETED',
              progress: 1,
              at: task.created_at,
              cursor: 9,
              detail: { result: { ok: true } },
            }),
          )
        },
        message() {},
      },
    })
  })
  afterAll(() => stub.stop(true))

  test('without a token a 401 is one line saying to set TASKLINE_TOKEN', async () => {
    const r = await cli(['show', '7'], { TASKLINE_URL: stub.url.href })
    expect(r.code).toBe(1)
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^error: .*requires a token: set TASKLINE_TOKEN/)])
  })

  test('TASKLINE_TOKEN goes as a bearer header on HTTP and beside "taskline" as the socket subprotocol, never in the URL', async () => {
    seen.length = 0
    const r = await cli(['watch', '7'], { TASKLINE_URL: stub.url.href, TASKLINE_TOKEN: 's3cret' })
    expect(r).toEqual({ code: 0, stdout: '3 PROCESSING 50%\n4 COMPLETED 100%\nresult: {"ok":true}\n', stderr: '' })
    expect(seen).toEqual([
      { authorization: 'Bearer s3cret', wsToken: null, protocols: null },
      { authorization: null, wsToken: null, protocols: 'taskline, s3cret' },
    ])
  })

  test('--token overrides the environment, and a rejected token says so', async () => {
    const r = await cli(['show', '7', '--token', 'wrong'], { TASKLINE_URL: stub.url.href, TASKLINE_TOKEN: 's3cret' })
    expect(r.code).toBe(1)
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^error: .*rejected the token: check TASKLINE_TOKEN/)])
  })
})
