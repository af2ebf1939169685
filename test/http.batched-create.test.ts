import { afterAll, beforeAll, expect, test } from 'bun:test'
import { postJson, startSystem, type TestSystem } from './helpers/system'

let sys: TestSystem
beforeAll(async () => {
  sys = await startSystem({ workers: 0 })
})
afterAll(() => sys.stop())

test('concurrent POSTs share INSERTs, yet each answer is its own task, as stored', async () => {
  const sent = Array.from({ length: 60 }, (_, i) => ({ title: `batched ${i}`, payload: { duration_ms: i }, max_attempts: 1 + (i % 5), ...(i % 2 ? { timeout_ms: 1000 + i } : {}) }))
  const answers = await Promise.all(sent.map((body) => postJson(`${sys.http}/api/tasks`, body)))
  answers.forEach((a, i) => {
    expect(a.status).toBe(201)
    expect(a.body).toMatchObject({ ...sent[i], timeout_ms: sent[i]!.timeout_ms ?? null, status: 'PENDING', seq: 1 })
  })
  const rows = await sys.db.selectFrom('tasks').select(['id', 'title', 'created_at', 'enqueued_at']).where('id', 'in', answers.map((a) => a.body.id)).execute()
  for (const row of rows) expect(row.title).toBe(answers.find((a) => a.body.id === row.id)!.body.title)
  expect(rows.every((r) => r.enqueued_at !== null)).toBe(true)
  // Tasks of one INSERT share its transaction's now(): fewer distinct times than tasks means creates were batched.
  expect(new Set(rows.map((r) => r.created_at.getTime())).size).toBeLessThan(rows.length)
})
