import { describe, expect, test } from 'bun:test'
import type { StreamedEvent, TaskEventMessage } from '../../domain/task-events/task-event'
import { EventSequencer } from './event-sequencer'

const ev = (taskId: number, seq: number): StreamedEvent => ({
  taskId,
  ownerId: null,
  seq,
  cursor: 0,
  json: JSON.stringify({ task_id: taskId, seq }),
  storedAt: null,
})
const msg = (taskId: number, seq: number) => ({ kind: 'change', task_id: taskId, seq }) as TaskEventMessage

function setup(history: Record<number, number[]> = {}, reorderGraceMs = 0) {
  const published: [number, number][] = []
  const fetches: [number, number, number][] = []
  const seq = new EventSequencer({
    publish: (e) => published.push([e.taskId, e.seq]),
    fetchMissing: async (taskId, after, before) => {
      fetches.push([taskId, after, before])
      return (history[taskId] ?? []).filter((s) => s > after && s < before).map((s) => msg(taskId, s))
    },
    onError: () => {},
    reorderGraceMs,
  })
  return { seq, published, fetches }
}

describe('event sequencer', () => {
  test('publishes in order and drops duplicates and stale events', () => {
    const { seq, published } = setup()
    for (const s of [1, 2, 2, 3, 1]) seq.offer(ev(7, s))
    expect(published).toEqual([
      [7, 1],
      [7, 2],
      [7, 3],
    ])
  })

  test('fills a gap from Postgres before publishing what came after it', async () => {
    const { seq, published } = setup({ 7: [1, 2, 3, 4, 5] })
    seq.offer(ev(7, 1))
    seq.offer(ev(7, 4)) // 2 and 3 never reached the stream
    seq.offer(ev(7, 5)) // arrives while the gap is being filled
    await Bun.sleep(0)
    expect(published).toEqual([
      [7, 1],
      [7, 2],
      [7, 3],
      [7, 4],
      [7, 5],
    ])
  })

  describe('a gap that closes by itself within the grace (shards: the first event can arrive after the claim)', () => {
    test('events that arrive out of order are published in order, without reading Postgres', async () => {
      const { seq, published, fetches } = setup({ 7: [1, 2, 3, 4], 8: [1, 2] }, 5000)
      seq.startFrom(100)
      const at = (taskId: number, s: number) => ({ ...ev(taskId, s), cursor: 100 + s })
      // A task first seen at its claim: its created event follows.
      seq.offer(at(8, 2))
      expect(published).toEqual([])
      seq.offer(at(8, 1))
      // A task seen before: its next two events overtake the one between.
      seq.offer(at(7, 1))
      seq.offer(at(7, 3))
      seq.offer(at(7, 4))
      seq.offer(at(7, 2))
      seq.offer(at(7, 5))
      expect(published).toEqual([
        [8, 1],
        [8, 2],
        [7, 1],
        [7, 2],
        [7, 3],
        [7, 4],
        [7, 5],
      ])
      expect(fetches).toEqual([])
    })

    test('a gap still open when the grace runs out is filled from Postgres', async () => {
      const { seq, published, fetches } = setup({ 7: [1, 2, 3, 4] }, 20)
      seq.offer(ev(7, 1))
      seq.offer(ev(7, 4)) // 2 and 3 never come
      seq.offer(ev(7, 2))
      expect(published).toEqual([
        [7, 1],
        [7, 2],
      ])
      await Bun.sleep(200)
      expect(published).toEqual([
        [7, 1],
        [7, 2],
        [7, 3],
        [7, 4],
      ])
      expect(fetches).toEqual([[7, 2, 4]])
    })
  })

  test('tasks are independent', () => {
    const { seq, published } = setup()
    seq.offer(ev(1, 1))
    seq.offer(ev(2, 5))
    seq.offer(ev(1, 2))
    expect(published).toEqual([
      [1, 1],
      [2, 5],
      [1, 2],
    ])
  })

  test('a gap whose fetch fails is fetched again, not skipped', async () => {
    const published: [number, number][] = []
    let failures = 2
    const seq = new EventSequencer({
      publish: (e) => published.push([e.taskId, e.seq]),
      fetchMissing: async (taskId, after, before) => {
        if (failures-- > 0) throw new Error('postgres is busy')
        return [2, 3].filter((s) => s > after && s < before).map((s) => msg(taskId, s))
      },
      onError: () => {},
      retryBaseMs: 1,
      reorderGraceMs: 0,
    })
    seq.offer(ev(7, 1))
    seq.offer(ev(7, 4))
    await Bun.sleep(50)
    expect(published).toEqual([
      [7, 1],
      [7, 2],
      [7, 3],
      [7, 4],
    ])
  })

  test('remembers at least the last maxTasks tasks seen, a task seen again among them, and never more than twice as many', () => {
    const seq = new EventSequencer({ publish: () => {}, fetchMissing: async () => [], onError: () => {}, maxTasks: 4 })
    for (let id = 1; id <= 10; id++) {
      seq.offer(ev(id, 1))
      if (id > 1) seq.offer(ev(1, id)) // task 1 keeps coming back
    }
    const known = Array.from({ length: 10 }, (_, i) => i + 1).filter((id) => seq.lastSeq(id) !== undefined)
    expect(known).toEqual(expect.arrayContaining([1, 7, 8, 9, 10]))
    expect(known.length).toBeLessThanOrEqual(8)
    expect(seq.lastSeq(1)).toBe(10)
    expect(known).not.toContain(2)
  })

  describe('a task first seen past seq 1', () => {
    // (seq, cursor) pairs of task 7 in Postgres
    const history = [
      [1, 90],
      [2, 110],
      [3, 120],
      [4, 130],
    ] as const
    const setup = (maxTasks?: number) => {
      const published: [number, number][] = []
      const seq = new EventSequencer({
        publish: (e) => published.push([e.taskId, e.seq]),
        fetchMissing: async (taskId, after, before) =>
          history.filter(([s]) => taskId === 7 && s > after && s < before).map(([s, cursor]) => ({ ...msg(taskId, s), cursor })),
        onError: () => {},
        maxTasks,
        reorderGraceMs: 0,
      })
      return { seq, published }
    }
    const at = (taskId: number, s: number, cursor: number): StreamedEvent => ({ ...ev(taskId, s), cursor })

    test('gets the earlier events committed since this instance started first (their XADD failed)', async () => {
      const { seq, published } = setup()
      seq.startFrom(100)
      seq.offer(at(7, 4, 130))
      await Bun.sleep(0)
      expect(published).toEqual([
        [7, 2],
        [7, 3],
        [7, 4],
      ])
    })

    test('gets none already published before it was forgotten', async () => {
      const { seq, published } = setup(1)
      seq.startFrom(0)
      seq.offer(at(7, 1, 90))
      seq.offer(at(7, 2, 110))
      seq.offer(at(8, 1, 115))
      seq.offer(at(9, 1, 116)) // two generations on, task 7 is forgotten: the floor rises to 110
      seq.offer(at(7, 4, 130))
      await Bun.sleep(0)
      expect(published).toEqual([
        [7, 1],
        [7, 2],
        [8, 1],
        [9, 1],
        [7, 3],
        [7, 4],
      ])
    })
  })
})
