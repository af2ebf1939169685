import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { connect } from './helpers/ws-client'
import { eventually, postJson, startSystem, type TestSystem } from './helpers/system'

let sys: TestSystem
beforeAll(async () => {
  sys = await startSystem({ apis: 2, workers: 1 })
})
afterAll(() => sys.stop())

const wsOf = (i: number) => sys.apis[i]!.url.href.replace(/^http/, 'ws').replace(/\/$/, '')
const create = async (payload: object = { duration_ms: 0 }) => (await postJson(`${sys.http}/api/tasks`, { title: 'ws', payload })).body
const completed = (id: number) => eventually(async () => ((await (await fetch(`${sys.http}/api/tasks/${id}`)).json()) as any).status === 'COMPLETED')

/** seq must go 1 by 1: no gap and no duplicate. */
const expectContiguous = (seqs: number[]) => {
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1)
}

describe('WebSocket endpoints', () => {
  test('a missing task is a 404 before any upgrade, a bad id a 400, a plain GET a 426', async () => {
    const missing = await fetch(`${sys.http}/ws/tasks/999999/`, {
      headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' },
    })
    expect(missing.status).toBe(404)
    expect(((await missing.json()) as any).error).toEqual({ code: 'not_found', message: 'task 999999 not found' })
    expect((await fetch(`${sys.http}/ws/tasks/abc`)).status).toBe(400)
    const task = await create()
    const plain = await fetch(`${sys.http}/ws/tasks/${task.id}`)
    expect(plain.status).toBe(426)
    expect(((await plain.json()) as any).error.code).toBe('upgrade_required')
    await expect(connect(`${sys.ws}/ws/tasks/999999`)).rejects.toThrow()
  })

  test('a cursor is spelled and bounded as over REST: plain digits, after_seq within a Postgres integer', async () => {
    const task = await create()
    const upgradeHeaders = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' }
    const refusal = async (path: string) => {
      const res = await fetch(`${sys.http}${path}`, { headers: upgradeHeaders })
      return { status: res.status, message: ((await res.json()) as any).error.message }
    }
    expect(await refusal(`/ws/tasks/${task.id}/?after_seq=99999999999`)).toEqual({ status: 400, message: 'after_seq: after_seq must be at most 2147483647' })
    for (const bad of ['1e3', '-1', '0x10', '1.5']) {
      expect(await refusal(`/ws/tasks/${task.id}/?after_seq=${bad}`)).toEqual({ status: 400, message: 'after_seq: after_seq must be a non-negative integer' })
    }
    expect(await refusal('/ws/tasks/?after=1e3')).toEqual({ status: 400, message: 'after: after must be a non-negative integer' })
  })

  test('both API instances deliver the same event to their own subscribers', async () => {
    const task = await create({ duration_ms: 300, steps: 1 })
    const a = await connect(`${wsOf(0)}/ws/tasks/${task.id}`)
    const b = await connect(`${wsOf(1)}/ws/tasks/${task.id}`)
    const [ca, cb] = await Promise.all([a.waitFor((m) => m.status === 'COMPLETED'), b.waitFor((m) => m.status === 'COMPLETED')])
    a.close()
    b.close()
    expect(ca).toEqual(cb)
    const changes = (s: typeof a) => s.messages.filter((m) => m.kind === 'change')
    const common = changes(a).filter((m) => changes(b).some((n) => n.seq === m.seq))
    expect(common.length).toBeGreaterThan(0)
    for (const m of common) expect(changes(b).find((n) => n.seq === m.seq)).toEqual(m)
  })

  test('?after_seq replays history from Postgres, then goes live with no gap and no duplicate', async () => {
    // Progress is stored at most every 100 ms: 60 steps over 1.2 s make about a dozen events.
    const task = await create({ duration_ms: 1200, steps: 60 })
    await eventually(async () => ((await (await fetch(`${sys.http}/api/tasks/${task.id}`)).json()) as any).seq >= 5)
    const ws = await connect(`${sys.ws}/ws/tasks/${task.id}/?after_seq=2`)
    await ws.waitFor((m) => m.status === 'COMPLETED')
    ws.close()
    expect(ws.messages.every((m) => m.kind === 'change')).toBe(true)
    const seqs = ws.messages.map((m) => m.seq)
    expect(seqs[0]).toBe(3)
    expectContiguous(seqs)
    const final = (await (await fetch(`${sys.http}/api/tasks/${task.id}`)).json()) as any
    expect(seqs.at(-1)).toBe(final.seq)
    expect(seqs.length).toBeGreaterThan(5)
  })

  test('reconnecting with the last seen seq during a burst loses and repeats nothing', async () => {
    const task = await create({ duration_ms: 800, steps: 80 })
    const first = await connect(`${sys.ws}/ws/tasks/${task.id}`)
    await first.waitFor((m) => m.progress >= 0.2)
    first.close()
    const lastSeen = first.messages.at(-1).seq
    const second = await connect(`${wsOf(1)}/ws/tasks/${task.id}?after_seq=${lastSeen}`)
    await second.waitFor((m) => m.status === 'COMPLETED')
    second.close()
    const seqs = [...first.messages.map((m) => m.seq), ...second.messages.map((m) => m.seq)]
    expectContiguous(seqs)
  })

  test('the socket stays open after the final message; the client decides when to close', async () => {
    const task = await create()
    await completed(task.id)
    const ws = await connect(`${sys.ws}/ws/tasks/${task.id}`)
    await ws.waitFor((m) => m.status === 'COMPLETED')
    await Bun.sleep(200)
    expect(ws.ws.readyState).toBe(WebSocket.OPEN)
    ws.ws.send('ping')
    await ws.waitFor((m) => m.kind === 'pong')
    ws.close()
  })

  test('/ws/tasks/ streams every task; ?after=<cursor> resumes it from Postgres', async () => {
    const feed = await connect(`${sys.ws}/ws/tasks/`)
    const hello = await feed.waitFor((m) => m.kind === 'hello')
    const t1 = await create()
    const t2 = await create()
    await feed.waitFor((m) => m.task_id === t2.id && m.status === 'COMPLETED')
    await feed.waitFor((m) => m.task_id === t1.id && m.status === 'COMPLETED')
    feed.close()
    const live = feed.messages.filter((m) => m.kind === 'change')
    expect(live.every((m) => m.cursor > hello.cursor)).toBe(true)

    // resume from the middle of what the first feed saw: the rest again, each once, then live
    const mid = live[1]!.cursor
    const resumed = await connect(`${wsOf(1)}/ws/tasks?after=${mid}`)
    const t3 = await create()
    await resumed.waitFor((m) => m.task_id === t3.id && m.status === 'COMPLETED')
    resumed.close()
    const cursors = resumed.messages.map((m) => m.cursor)
    expect(new Set(cursors).size).toBe(cursors.length)
    expect(cursors).toEqual(expect.arrayContaining(live.filter((m) => m.cursor > mid).map((m) => m.cursor)))
    expect(cursors.every((c) => c > mid)).toBe(true)
  })
})
