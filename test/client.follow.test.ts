import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test'
import { TasklineClient, type FeedFollower, type SocketState, type TaskEvent, type TaskFollower, type TaskMessage } from '../src/client'
import { taskEventSchema } from '../src/domain/task-events/task-event'
import { createToken } from '../src/domain/tokens/token.service'
import { startWsRelay } from './helpers/ws-relay'
import { eventually, startSystem, type TestSystem } from './helpers/system'

/**
 * The typed client's followers against the real system with authentication
 * on (the token rides as a subprotocol), through a relay the test can cut and
 * hold down, so each reconnect is a real one and its URL can be read.
 */

let sys: TestSystem
let aliceToken: string
let alice: TasklineClient
let admin: TasklineClient
beforeAll(async () => {
  sys = await startSystem({ workers: 1, env: { AUTH: 'required', DEMO_WORK_MS: 20 } })
  aliceToken = (await createToken(sys.db, 'alice', false)).token
  alice = new TasklineClient({ baseUrl: sys.http, token: aliceToken })
  admin = new TasklineClient({ baseUrl: sys.http, token: (await createToken(sys.db, 'root', true)).token })
})
afterAll(() => sys.stop())

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const c of cleanups.splice(0)) c()
})

/** A relay to this file's API, stopped after the file. */
function startRelay() {
  const relay = startWsRelay(sys.ws)
  cleanups.push(relay.stop)
  return relay
}

/** Each task's seqs as delivered, checked to run 1, 2, 3, ... with no gap and no repeat. */
function seqsByTask(events: TaskEvent[]): Map<number, number[]> {
  const by = new Map<number, number[]>()
  for (const e of events) by.set(e.task_id, [...(by.get(e.task_id) ?? []), e.seq])
  return by
}
const oneToN = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

const completed = (id: number) =>
  eventually(async () => {
    const t = await alice.getTask(id)
    return t.status === 'COMPLETED' && t
  })

describe('followTask', () => {
  test('with a token, through a cut: a snapshot, then every change once, resumed with after_seq', async () => {
    const relay = startRelay()
    const viaRelay = new TasklineClient({ baseUrl: relay.base, token: aliceToken })
    const task = await alice.createTask({ title: 'followed', payload: { duration_ms: 1000, steps: 10 } })
    const seen: TaskMessage[] = []
    const closes: { code: number; reconnecting: boolean }[] = []
    const follower: TaskFollower = viaRelay.followTask(task.id, { minDelayMs: 20, onChange: (m) => seen.push(m), onClose: (c) => closes.push(c) })
    cleanups.push(() => follower.close())
    await eventually(async () => seen.some((m) => m.status === 'PROCESSING' && m.progress > 0))
    relay.cut()
    await eventually(async () => seen.some((m) => m.status === 'COMPLETED'), 15_000)

    expect(seen[0]!.kind).toBe('snapshot')
    expect(seen.map((m) => m.seq)).toEqual(oneToN(seen.length).map((n) => n + seen[0]!.seq - 1))
    expect(closes[0]).toMatchObject({ reconnecting: true })
    expect(relay.asked[0]).toBe(`/ws/tasks/${task.id}/`)
    expect(relay.asked[1]).toMatch(new RegExp(`^/ws/tasks/${task.id}/\\?after_seq=\\d+$`))
    expect(follower.lastSeq).toBe(seen.at(-1)!.seq)
  })

  test("another owner's task, or a refused token, stops the follower instead of retrying", async () => {
    const theirs = await admin.createTask({ title: 'not alice' })
    const attempts = (start: (o: { minDelayMs: number; onState: (s: SocketState) => void }) => { close(): void }) => {
      const states: SocketState[] = []
      const follower = start({ minDelayMs: 10, onState: (s) => states.push(s) })
      cleanups.push(() => follower.close())
      return states
    }
    const notFound = attempts((o) => alice.followTask(theirs.id, { ...o, onChange() {} }))
    const forged = new TasklineClient({ baseUrl: sys.http, token: 'tl_1_forged' })
    const unauthorized = attempts((o) => forged.followFeed({ ...o, onChange() {} }))
    for (const states of [notFound, unauthorized]) {
      await eventually(async () => states.some((s) => s.kind === 'paused'))
      await Bun.sleep(100)
      expect(states.filter((s) => s.kind === 'connecting')).toHaveLength(1)
      expect(states.at(-1)).toMatchObject({ kind: 'paused', why: 'refused', end: { opened: false } })
    }
  })
})

describe('followFeed', () => {
  test('starts with hello, and after a disconnect resumes with ?after= the last cursor, missing nothing', async () => {
    const relay = startRelay()
    const viaRelay = new TasklineClient({ baseUrl: relay.base, token: aliceToken })
    const hellos: number[] = []
    const events: TaskEvent[] = []
    const closes: { reconnecting: boolean }[] = []
    const feed: FeedFollower = viaRelay.followFeed({
      minDelayMs: 20,
      maxDelayMs: 100,
      onHello: (c) => hellos.push(c),
      onChange: (e) => events.push(e),
      onClose: (c) => closes.push(c),
    })
    cleanups.push(() => feed.close())
    await eventually(async () => hellos.length === 1)
    expect(feed.cursor).toBe(hellos[0]!)

    const before = await alice.createTask({ title: 'before the cut', payload: { duration_ms: 60, steps: 3 } })
    const last = await completed(before.id)
    await eventually(async () => events.some((e) => e.task_id === before.id && e.seq === last.seq))
    const cursorAtCut = feed.cursor!
    expect(cursorAtCut).toBe(Math.max(...events.map((e) => e.cursor)))

    relay.state.down = true
    relay.cut()
    await eventually(async () => closes.some((c) => c.reconnecting))
    // Changes made while the feed is away: the resumed socket must replay them from Postgres.
    const during = [
      await alice.createTask({ title: 'while away 1', payload: { duration_ms: 60, steps: 3 } }),
      await alice.createTask({ title: 'while away 2', payload: { duration_ms: 60, steps: 3 } }),
    ]
    const finals = await Promise.all(during.map((t) => completed(t.id)))
    await admin.createTask({ title: "another owner's, not in alice's feed" })
    const askedWhileDown = relay.asked.length
    relay.state.down = false
    await eventually(async () => finals.every((f) => events.some((e) => e.task_id === f.id && e.seq === f.seq)), 15_000)

    expect(hellos).toHaveLength(1)
    expect(relay.asked.length).toBeGreaterThan(askedWhileDown)
    // Besides sockets, the relay saw the follower ask over HTTP whether a refused upgrade was for good (a 503: no).
    const sockets = relay.asked.filter((url) => url.startsWith('/ws/'))
    expect(sockets[0]).toBe('/ws/tasks/')
    for (const url of sockets.slice(1)) expect(url).toBe(`/ws/tasks/?after=${cursorAtCut}`)
    const by = seqsByTask(events)
    expect([...by.keys()].sort()).toEqual([before.id, ...during.map((t) => t.id)].sort())
    expect(by.get(before.id)).toEqual(oneToN(last.seq))
    for (const f of finals) expect(by.get(f.id)).toEqual(oneToN(f.seq))
    for (const e of events) expect(taskEventSchema.safeParse(e).error).toBeUndefined()
    expect(feed.cursor).toBe(Math.max(...events.map((e) => e.cursor)))
  })

  test('given after, it starts from there without a hello: a non-admin token replays only its own tasks', async () => {
    const mine = await alice.createTask({ title: 'mine', payload: { duration_ms: 20 } })
    await admin.createTask({ title: 'not mine' })
    const done = await completed(mine.id)
    const hellos: number[] = []
    const events: TaskEvent[] = []
    const feed = alice.followFeed({ after: 0, onHello: (c) => hellos.push(c), onChange: (e) => events.push(e) })
    cleanups.push(() => feed.close())
    await eventually(async () => events.some((e) => e.task_id === mine.id && e.seq === done.seq))
    expect(hellos).toEqual([])
    expect(seqsByTask(events).get(mine.id)).toEqual(oneToN(done.seq))
    const own = new Set((await alice.listTasks({ limit: 100 })).results.map((t) => t.id))
    expect(events.every((e) => own.has(e.task_id))).toBe(true)
  })
})
