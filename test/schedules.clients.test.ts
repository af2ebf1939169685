import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { ApiError } from '../src/client/api-error'
import { TasklineClient } from '../src/client/taskline-client'
import { startSystem, type TestSystem } from './helpers/system'

const repoRoot = join(import.meta.dir, '..')

let sys: TestSystem
beforeAll(async () => {
  // No worker: nothing ticks, so next runs stay as created.
  sys = await startSystem({ workers: 0, env: { AUTH: 'off', RATE_LIMIT_PER_SEC: 0 } })
})
afterAll(() => sys.stop())

async function cli(...args: string[]) {
  const proc = Bun.spawn(['bun', 'src/bin/cli.ts', ...args], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', TASKLINE_URL: sys.http, TZ: 'UTC' },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  return { code, stdout, stderr }
}

describe('schedules from the typed client', () => {
  test('create, list, get, pause, resume, delete; a bad cron is an ApiError naming cron', async () => {
    const client = new TasklineClient({ baseUrl: sys.http })
    const s = await client.createSchedule({ name: 'client-made', cron: '0 0 1 1 *', task: { title: 'new year', payload: { steps: 1 } } })
    expect(s).toMatchObject({ name: 'client-made', timezone: 'UTC', paused: false, task: { title: 'new year', type: 'demo', max_attempts: 3 } })
    expect(s.next_run_at).toMatch(/-01-01T00:00:00\.000Z$/)
    expect((await client.listSchedules()).map((x) => x.id)).toContain(s.id)
    expect(await client.getSchedule(s.id)).toEqual(s)
    expect((await client.pauseSchedule(s.id)).next_run_at).toBeNull()
    expect((await client.resumeSchedule(s.id)).next_run_at).toBe(s.next_run_at)
    await client.deleteSchedule(s.id)
    const missing = await client.getSchedule(s.id).catch((e: unknown) => e)
    expect(missing).toBeInstanceOf(ApiError)
    expect((missing as ApiError).status).toBe(404)
    const bad = (await client.createSchedule({ name: 'bad', cron: 'nope', task: { title: 't' } }).catch((e: unknown) => e)) as ApiError
    expect(bad.code).toBe('validation_error')
    expect(bad.details.map((d) => d.path)).toContain('cron')
  })
})

describe('queues from the typed client', () => {
  test('a schedule template and a task carry queue and priority; listQueues counts them; pause and resume', async () => {
    const client = new TasklineClient({ baseUrl: sys.http })
    const s = await client.createSchedule({ name: 'queued', cron: '0 0 1 1 *', task: { title: 't', queue: 'client-q', priority: 4 } })
    expect(s.task).toMatchObject({ queue: 'client-q', priority: 4 })
    await client.deleteSchedule(s.id)
    const task = await client.createTask({ title: 'q', queue: 'client-q', priority: -2, delay_ms: 60_000 })
    expect(task).toMatchObject({ queue: 'client-q', priority: -2, depends_on: [] })
    await client.createTask({ title: 'elsewhere', delay_ms: 60_000 })
    expect((await client.listTasks({ queue: 'client-q' })).results.map((t) => t.id)).toEqual([task.id])
    expect(await client.pauseQueue('client-q')).toEqual({ name: 'client-q', paused: true, ready: 0, waiting: 1, running: 0 })
    expect(await client.listQueues()).toContainEqual({ name: 'client-q', paused: true, ready: 0, waiting: 1, running: 0 })
    expect((await client.resumeQueue('client-q')).paused).toBe(false)
    const bad = (await client.pauseQueue('no spaces').catch((e: unknown) => e)) as ApiError
    expect(bad.status).toBe(400)
    expect(bad.details.map((d) => d.path)).toEqual(['name'])
  })
})

describe('taskline schedules (child process)', () => {
  test('create, list with the next run, pause, resume, delete', async () => {
    const created = await cli('schedules', 'create', 'cli-made', '30 6 * * 1', 'weekly digest', '--timezone', 'Europe/Paris', '--payload', '{"steps": 2}')
    expect(created.stderr).toBe('')
    expect(created.code).toBe(0)
    const id = Number(/^schedule (\d+) cli-made created; next run \d{4}-\d\d-\d\d 05:30:00$/m.exec(created.stdout)?.[1])
    expect(id).toBeGreaterThan(0)

    const list = await cli('schedules', 'list')
    expect(list.code).toBe(0)
    expect(list.stdout).toMatch(/^ID +NAME +CRON +ZONE +NEXT RUN +LAST RUN +TASK$/m)
    expect(list.stdout).toMatch(new RegExp(`^ *${id} +cli-made +30 6 \\* \\* 1 +Europe/Paris +\\d{4}-\\d\\d-\\d\\d 05:30:00 +- +demo: weekly digest$`, 'm'))
    // Bare `schedules` lists too; --json prints the API's answer.
    expect((await cli('schedules')).stdout).toBe(list.stdout)
    const json = JSON.parse((await cli('schedules', 'list', '--json')).stdout)
    expect(json.results.find((s: { id: number }) => s.id === id).task.payload).toEqual({ steps: 2 })

    expect((await cli('schedules', 'pause', String(id))).stdout).toBe(`schedule ${id} cli-made paused; next run none (paused)\n`)
    expect((await cli('schedules', 'list')).stdout).toMatch(new RegExp(`^ *${id} +cli-made .* paused +- +demo`, 'm'))
    expect((await cli('schedules', 'resume', String(id))).stdout).toMatch(/resumed; next run \d{4}-\d\d-\d\d 05:30:00\n$/)
    expect((await cli('schedules', 'delete', String(id))).stdout).toBe(`schedule ${id} deleted\n`)
    expect((await cli('schedules', 'list')).stdout).not.toContain('cli-made')
  }, 30_000)

  test('usage errors exit 2; API refusals exit 1 naming the field', async () => {
    const unknown = await cli('schedules', 'frobnicate')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('unknown action "frobnicate"')
    expect((await cli('schedules', 'create', 'only-a-name')).code).toBe(2)
    expect((await cli('schedules', 'pause', 'x')).code).toBe(2)
    const bad = await cli('schedules', 'create', 'bad-zone', '* * * * *', 't', '--timezone', 'Mars/Olympus')
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('timezone')
    expect((await cli('schedules', 'delete', '999999')).code).toBe(1)
  }, 30_000)
})
