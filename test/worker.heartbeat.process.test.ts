import { afterAll, beforeAll, expect, setDefaultTimeout, test } from 'bun:test'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnRole, type RoleProcess } from './helpers/processes'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'

/**
 * A handler doing CPU work holds its worker's event loop, so the lease
 * keeper's timer cannot fire: ctx.heartbeat() is what keeps such a run's lease
 * and lets a cancel reach it. The handler runs in a worker process of its own
 * (it blocks its loop); the API and a second worker, whose sweeper takes back
 * expired leases, run here.
 */
setDefaultTimeout(60_000)
const fixture = join(import.meta.dir, 'fixtures/handlers.ts')
const dir = mkdtempSync(join(tmpdir(), 'taskline-heartbeat-'))
const leaseMs = 1000
let sys: TestSystem
let spinner: RoleProcess

beforeAll(async () => {
  sys = await startSystem({ workers: 1, env: { VISIBILITY_TIMEOUT_MS: leaseMs, SWEEP_INTERVAL_MS: 100 } })
  const c = sys.config
  spinner = spawnRole('worker', {
    DATABASE_URL: c.DATABASE_URL,
    REDIS_URL: c.REDIS_URL,
    KEY_PREFIX: c.KEY_PREFIX,
    VISIBILITY_TIMEOUT_MS: leaseMs,
    HANDLERS: fixture,
    WORKER_METRICS_PORT: 0,
    LOG_FORMAT: 'json',
  })
  await spinner.waitForLog((l) => l.msg === 'worker started', 30_000)
})
afterAll(async () => {
  spinner?.kill('SIGKILL')
  await spinner?.exited
  await sys.stop()
  rmSync(dir, { recursive: true, force: true })
})

const getTask = async (id: number) => (await (await fetch(`${sys.http}/api/tasks/${id}`)).json()) as any
const history = async (id: number) => ((await (await fetch(`${sys.http}/api/tasks/${id}/events`)).json()) as any).results as any[]
const spin = (payload: object) => postJson(`${sys.http}/api/tasks`, { title: 'spin', type: 'spin', payload, max_attempts: 1 })
const lost = (events: any[]) => events.some((e) => String(e.detail?.error ?? '').includes('lease expired'))

test('a CPU-bound handler that calls heartbeat keeps its lease for three times its length and completes on its first attempt', async () => {
  const { body } = await spin({ ms: 3 * leaseMs, heartbeat: true })
  const done = await eventually(async () => ((t) => t.status !== 'PENDING' && t.status !== 'PROCESSING' && t)(await getTask(body.id)), 30_000)
  expect(done).toMatchObject({ status: 'COMPLETED', attempts: 1 })
  expect(lost(await history(body.id))).toBe(false)
})

test('without heartbeat the same work loses its lease: the other worker takes the task for dead', async () => {
  const { body } = await spin({ ms: 3 * leaseMs, heartbeat: false })
  const done = await eventually(async () => ((t) => t.status === 'FAILED' && t)(await getTask(body.id)), 30_000)
  expect(lost(await history(body.id))).toBe(true)
  expect(done.error).toContain('lease expired')
})

test('a cancel reaches a CPU-bound handler at its next heartbeat, which throws', async () => {
  const marker = join(dir, 'cancelled')
  const { body } = await spin({ ms: 60_000, heartbeat: true, marker_file: marker })
  await eventually(async () => (await getTask(body.id)).status === 'PROCESSING')
  expect((await postJson(`${sys.http}/api/tasks/${body.id}/cancel`, {})).status).toBe(200)
  await eventually(async () => existsSync(marker), 15_000)
  expect(readFileSync(marker, 'utf8')).toMatch(/^stopped after \d+ slices$/)
  expect((await getTask(body.id)).status).toBe('CANCELLED')
})
