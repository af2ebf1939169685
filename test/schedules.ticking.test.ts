import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'kysely'
import { fireDueSchedules } from '../src/domain/schedules/schedule.service'
import { createLogger } from '../src/infra/logger'
import { streamKeys } from '../src/infra/stream-keys'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'

let sys: TestSystem
beforeAll(async () => {
  // Two workers, both ticking every 100 ms: they race for every tick.
  sys = await startSystem({ workers: 2, env: { SCHEDULER_INTERVAL_MS: 100, DEMO_WORK_MS: 0 } })
})
afterAll(() => sys.stop())

const create = async (name: string, cron: string, task: object = {}) => {
  const r = await postJson(`${sys.http}/api/schedules/`, { name, cron, task: { title: `from ${name}`, ...task } })
  expect(r.status).toBe(201)
  return r.body as { id: number; next_run_at: string }
}
const action = async (id: number, what: 'pause' | 'resume') => (await postJson(`${sys.http}/api/schedules/${id}/${what}`, {})).body

/**
 * The tasks a schedule created, with the tick each one is for. The tick is
 * read from the key up to the tick's time, so a key made unique some other
 * way (a broken guard) would still show two tasks for one tick.
 */
async function ticksOf(id: number): Promise<{ tick: number; n: number }[]> {
  const rows = await sys.db
    .selectFrom('tasks')
    .select(sql<string>`substring(idempotency_key from '^schedule:[0-9]+:([^/]+Z)')`.as('tick'))
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('idempotency_key', 'like', `schedule:${id}:%`)
    .groupBy('tick')
    .orderBy('tick')
    .execute()
  return rows.map((r) => ({ tick: Date.parse(r.tick), n: Number(r.n) }))
}

describe('schedules tick in the workers', () => {
  test('a seconds cron makes exactly one task per tick with two workers, each tick in turn', async () => {
    const s = await create('every-second', '*/1 * * * * *', { queue: 'ticks', priority: 3 })
    const ticks = await eventually(async () => {
      // Besides their own timers, both workers look at once, over and over: they meet on every tick.
      await Promise.all(sys.workers.flatMap((w) => [w.scheduler.tickOnce(), w.scheduler.tickOnce()]))
      const t = await ticksOf(s.id)
      return t.length >= 4 && t
    }, 15_000)
    await action(s.id, 'pause')
    for (const t of ticks) expect(t.n).toBe(1)
    // No tick skipped: consecutive seconds.
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]!.tick - ticks[i - 1]!.tick).toBe(1000)
    // And the tasks run like any others.
    const { n } = await sys.db
      .selectFrom('tasks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('idempotency_key', 'like', `schedule:${s.id}:%`)
      .where('title', '=', 'from every-second')
      // Each tick's task is placed as its template says.
      .where('queue', '=', 'ticks')
      .where('priority', '=', 3)
      .executeTakeFirstOrThrow()
    expect(Number(n)).toBeGreaterThanOrEqual(4)
    await eventually(async () => {
      const r = await fetch(`${sys.http}/api/tasks/?status=COMPLETED`)
      const body = (await r.json()) as { results: { title: string }[] }
      return body.results.some((t) => t.title === 'from every-second')
    })
  })

  test('pause stops the ticks, resume starts them again from now', async () => {
    const s = await create('pausable', '*/1 * * * * *')
    const control = await create('control', '*/1 * * * * *')
    await eventually(async () => (await ticksOf(s.id)).length >= 1)
    await action(s.id, 'pause')
    // A tick being fired as the pause commits may still land; count from after it.
    const pausedAt = Date.now()
    const atPause = (await ticksOf(s.id)).length
    // Time passes with the workers ticking: the control schedule makes three more tasks.
    const controlAt = (await ticksOf(control.id)).length
    await eventually(async () => (await ticksOf(control.id)).length >= controlAt + 3, 15_000)
    const during = await ticksOf(s.id)
    expect(during.filter((t) => t.tick > pausedAt).length).toBe(0)
    expect(during.length).toBeLessThanOrEqual(atPause + 1)

    const resumed = await action(s.id, 'resume')
    expect(resumed.paused).toBe(false)
    const resumedAt = Date.now()
    await eventually(async () => (await ticksOf(s.id)).filter((t) => t.tick >= resumedAt - 1000).length >= 2, 15_000)
    // Nothing was caught up for the paused seconds.
    const after = await ticksOf(s.id)
    expect(after.filter((t) => t.tick > pausedAt + 1000 && t.tick < resumedAt - 1000).length).toBe(0)
    await action(s.id, 'pause')
    await action(control.id, 'pause')
  })

  test('an hour of missed ticks makes one catch-up task, then ticks resume on schedule', async () => {
    // Driven by hand at chosen times in 2030: no worker's clock reaches them, so only these calls fire it.
    const s = await create('hourly-gap', '0 * * * * *')
    const deps = { db: sys.db, redis: sys.redis, keys: streamKeys(sys.prefix), eventsMaxLen: 1000, logger: createLogger('silent') }
    const now = new Date('2030-01-01T12:00:30Z')
    await sys.db
      .updateTable('schedules')
      .set({ next_run_at: new Date(now.getTime() - 3_600_000) })
      .where('id', '=', s.id)
      .execute()
    const nextRun = async () => await sys.db.selectFrom('schedules').select(['next_run_at', 'last_run_at']).where('id', '=', s.id).executeTakeFirstOrThrow()

    // Five racing calls: one task, for the latest missed minute.
    const created = await Promise.all(Array.from({ length: 5 }, () => fireDueSchedules(deps, now)))
    expect(created.reduce((a, b) => a + b, 0)).toBe(1)
    expect(await ticksOf(s.id)).toEqual([{ tick: Date.parse('2030-01-01T12:00:00Z'), n: 1 }])
    expect((await nextRun()).next_run_at.toISOString()).toBe('2030-01-01T12:01:00.000Z')
    expect((await nextRun()).last_run_at?.toISOString()).toBe('2030-01-01T12:00:00.000Z')

    // Not due again until its next minute; then exactly that minute.
    expect(await fireDueSchedules(deps, new Date('2030-01-01T12:00:59Z'))).toBe(0)
    expect(await fireDueSchedules(deps, new Date('2030-01-01T12:01:00Z'))).toBe(1)
    expect((await ticksOf(s.id)).map((t) => new Date(t.tick).toISOString())).toEqual(['2030-01-01T12:00:00.000Z', '2030-01-01T12:01:00.000Z'])
    expect((await nextRun()).next_run_at.toISOString()).toBe('2030-01-01T12:02:00.000Z')
    await action(s.id, 'pause')
  })

  test('with the workers, a schedule an hour behind makes one catch-up task, then one per tick', async () => {
    const s = await create('behind', '*/1 * * * * *')
    await action(s.id, 'pause')
    const setAt = Date.now()
    await sys.db
      .updateTable('schedules')
      .set({ paused: false, next_run_at: new Date(setAt - 3_600_000) })
      .where('id', '=', s.id)
      .execute()
    const ticks = await eventually(async () => {
      const t = await ticksOf(s.id)
      return t.length >= 3 && t
    }, 15_000)
    await action(s.id, 'pause')
    for (const t of ticks) expect(t.n).toBe(1)
    // The catch-up task is for a tick at about the time it was found, not an hour ago.
    expect(ticks[0]!.tick).toBeGreaterThanOrEqual(setAt - 1000)
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]!.tick - ticks[i - 1]!.tick).toBe(1000)
  })
})
