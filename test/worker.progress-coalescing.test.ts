import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'

/**
 * A handler may report progress as often as it likes; the worker stores at
 * most one report per 100 ms per task (each is a history row and a message to
 * every subscriber), the latest winning, and a failed run's last report is
 * not lost.
 */

let sys: TestSystem
beforeAll(async () => {
  sys = await startSystem({ workers: 1 })
})
afterAll(() => sys.stop())

async function runToEnd(payload: Record<string, unknown>, maxAttempts = 3) {
  const { body } = await postJson(`${sys.http}/api/tasks/`, { title: 'chatty', payload, max_attempts: maxAttempts })
  const task = await eventually(
    async () => {
      const row = await sys.db.selectFrom('tasks').selectAll().where('id', '=', body.id).executeTakeFirst()
      return row && (row.status === 'COMPLETED' || row.status === 'FAILED') ? row : null
    },
    20_000,
    25,
    { what: `task ${body.id} to finish` },
  )
  const events = await sys.db.selectFrom('task_events').selectAll().where('task_id', '=', body.id).orderBy('seq').execute()
  // Progress reports are the PROCESSING events after the claim's (which carries the attempt).
  const progress = events.filter((e) => e.status === 'PROCESSING' && e.detail === null)
  return { task, events, progress }
}

describe('progress reports', () => {
  test('999 reports in about a second are stored as a handful, in order, and completion stores 1', async () => {
    const { task, events, progress } = await runToEnd({ steps: 1000, duration_ms: 1000 })
    expect(task.status).toBe('COMPLETED')
    const ranMs = task.finished_at!.getTime() - task.started_at!.getTime()
    // One per 100 ms of running, and one more for the first report.
    expect(progress.length).toBeGreaterThanOrEqual(2)
    expect(progress.length).toBeLessThanOrEqual(Math.ceil(ranMs / 100) + 1)
    const fractions = progress.map((e) => e.progress)
    expect(fractions).toEqual([...fractions].sort((a, b) => a - b))
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1))
    expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', progress: 1 })
  })

  test("a failed run's last report is stored before the failure, though it came within 100 ms of the one before", async () => {
    const { task, events, progress } = await runToEnd({ steps: 200, duration_ms: 200, fail: true }, 1)
    expect(task.status).toBe('FAILED')
    expect(progress.length).toBeLessThanOrEqual(10)
    // The demo reports step/steps after every step but the last, then throws.
    expect(progress.at(-1)!.progress).toBe(199 / 200)
    expect(task.progress).toBe(199 / 200)
    expect(events.at(-1)).toMatchObject({ status: 'FAILED', progress: 199 / 200 })
  })
})
