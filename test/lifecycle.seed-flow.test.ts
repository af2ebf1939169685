import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { connect } from './helpers/ws-client'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'

let sys: TestSystem
beforeAll(async () => {
  sys = await startSystem({ env: { DEMO_WORK_MS: 200 } })
})
afterAll(() => sys.stop())

describe('the seed flow: POST, worker runs it, sockets see every change', () => {
  test('POST /api/tasks/ answers 201 PENDING and the task reaches COMPLETED', async () => {
    const { status, body } = await postJson(`${sys.http}/api/tasks/`, { title: 'example task' })
    expect(status).toBe(201)
    expect(body).toMatchObject({ title: 'example task', status: 'PENDING', type: 'demo', seq: 1, attempts: 0 })
    expect(typeof body.id).toBe('number')
    expect(Date.parse(body.created_at)).not.toBeNaN()

    const done = await eventually(async () => {
      const t = (await (await fetch(`${sys.http}/api/tasks/${body.id}/`)).json()) as any
      return t.status === 'COMPLETED' && t
    })
    expect(done).toMatchObject({ progress: 1, attempts: 1, result: { steps: 4, duration_ms: 200 } })

    const list = (await (await fetch(`${sys.http}/api/tasks/`)).json()) as any
    expect(list.results.map((t: any) => t.id)).toContain(body.id)
  })

  test('a socket opened right after POST sees snapshot, PROCESSING then COMPLETED, seq increasing', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'watched' })
    const ws = await connect(`${sys.ws}/ws/tasks/${body.id}/`)
    await ws.waitFor((m) => m.status === 'COMPLETED')
    ws.close()
    const [first, ...rest] = ws.messages
    expect(first).toMatchObject({ kind: 'snapshot', task_id: body.id })
    for (const m of ws.messages) expect(Object.keys(m)).toEqual(expect.arrayContaining(['task_id', 'status', 'seq', 'progress', 'at']))
    const statuses = rest.map((m) => m.status).filter((s, i, a) => s !== a[i - 1])
    expect(statuses.slice(-2)).toEqual(['PROCESSING', 'COMPLETED'])
    const seqs = ws.messages.map((m) => m.seq)
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
    expect(new Set(seqs).size).toBe(seqs.length)
    // progress is reported between PROCESSING and COMPLETED
    expect(rest.some((m) => m.status === 'PROCESSING' && m.progress > 0 && m.progress < 1)).toBe(true)
  })

  test('a late subscriber gets the final state at once', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'late', payload: { duration_ms: 0 } })
    await eventually(async () => ((await (await fetch(`${sys.http}/api/tasks/${body.id}`)).json()) as any).status === 'COMPLETED')
    const ws = await connect(`${sys.ws}/ws/tasks/${body.id}`)
    const snapshot = await ws.waitFor(() => true)
    ws.close()
    expect(snapshot).toMatchObject({ kind: 'snapshot', status: 'COMPLETED', progress: 1 })
    expect(snapshot.task.result).toEqual({ steps: 1, duration_ms: 0 })
  })

  // Steps 200 ms apart: progress reports closer than 100 ms are coalesced (worker.progress-coalescing.test.ts).
  test('GET /api/tasks/:id/events lists the history oldest first, one row per change', async () => {
    const { body } = await postJson(`${sys.http}/api/tasks`, { title: 'history', payload: { duration_ms: 600, steps: 3 } })
    await eventually(async () => ((await (await fetch(`${sys.http}/api/tasks/${body.id}`)).json()) as any).status === 'COMPLETED')
    const events = ((await (await fetch(`${sys.http}/api/tasks/${body.id}/events/`)).json()) as any).results
    expect(events.map((e: any) => [e.seq, e.status, e.progress])).toEqual([
      [1, 'PENDING', 0],
      [2, 'PROCESSING', 0],
      [3, 'PROCESSING', 1 / 3],
      [4, 'PROCESSING', 2 / 3],
      [5, 'COMPLETED', 1],
    ])
  })
})
