import { describe, expect, test } from 'bun:test'
import { createBatcher, createRelay } from './batcher'

describe('batcher', () => {
  test('calls made together share one flush, each gets its own result in order', async () => {
    const flushes: number[][] = []
    const b = createBatcher(async (items: number[]) => {
      flushes.push(items)
      return items.map((i) => i * 10)
    })
    expect(await Promise.all([1, 2, 3].map((i) => b.add(i)))).toEqual([10, 20, 30])
    expect(flushes).toEqual([[1, 2, 3]])
  })

  test('a lone call is flushed at once', async () => {
    const b = createBatcher(async (items: string[]) => items)
    expect(await b.add('solo')).toBe('solo')
  })

  test('calls arriving while flushes run form the next batch, capped at maxBatch', async () => {
    const flushes: number[][] = []
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const b = createBatcher(
      async (items: number[]) => {
        flushes.push(items)
        await gate
        return items
      },
      { maxBatch: 3 },
    )
    const all = Promise.all(Array.from({ length: 10 }, (_, i) => b.add(i)))
    await Bun.sleep(1)
    release()
    expect(await all).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(flushes.every((f) => f.length <= 3)).toBe(true)
    expect(flushes.flat()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  })

  test('a failed flush rejects every call in it, and the next batch still runs', async () => {
    let fail = true
    const b = createBatcher(async (items: number[]) => {
      if (fail) {
        fail = false
        throw new Error('db away')
      }
      return items
    })
    const first = Promise.allSettled([b.add(1), b.add(2)])
    expect((await first).map((r) => r.status)).toEqual(['rejected', 'rejected'])
    expect(await b.add(3)).toBe(3)
  })

  test('maxInFlight: that many flushes run at once, and calls arriving meanwhile wait for one to end', async () => {
    const started: number[][] = []
    const gates: (() => void)[] = []
    const b = createBatcher(
      async (items: number[]) => {
        started.push(items)
        await new Promise<void>((r) => gates.push(r))
        return items
      },
      { maxInFlight: 2 },
    )
    const first = b.add(1)
    await Bun.sleep(1)
    const second = b.add(2)
    await Bun.sleep(1)
    const third = b.add(3)
    const fourth = b.add(4)
    await Bun.sleep(1)
    // The second starts while the first still runs; the third and fourth wait, together.
    expect(started).toEqual([[1], [2]])
    gates[0]!()
    expect(await first).toBe(1)
    await Bun.sleep(1)
    expect(started).toEqual([[1], [2], [3, 4]])
    gates[1]!()
    gates[2]!()
    expect(await Promise.all([second, third, fourth])).toEqual([2, 3, 4])
  })

  describe('lingerMs: calls from many connections, each arriving in a loop turn of its own', () => {
    const turn = () => new Promise<void>((r) => setImmediate(r))
    /**
     * Adds one call per event-loop turn while `more(i)`, like requests read
     * from separate sockets: each turn's call is scheduled before the one
     * before it is made, as the next socket's data is already waiting.
     */
    async function trickle(b: { add(i: number): Promise<number> }, more: (i: number) => boolean) {
      const calls: Promise<number>[] = []
      await new Promise<void>((done) => {
        const step = (i: number) => {
          setImmediate(() => (more(i + 1) ? step(i + 1) : done()))
          calls.push(b.add(i))
        }
        setImmediate(() => step(0))
      })
      return Promise.all(calls)
    }
    const recording = (lingerMs: number) => {
      const flushes: number[][] = []
      const b = createBatcher(
        async (items: number[]) => {
          flushes.push(items)
          return items
        },
        { lingerMs, maxBatch: 1_000_000 },
      )
      return { b, flushes }
    }

    test('an idle batcher waits while calls keep coming, so they share one flush', async () => {
      const lingering = recording(50)
      expect(await trickle(lingering.b, (i) => i < 16)).toEqual(Array.from({ length: 16 }, (_, i) => i))
      expect(lingering.flushes).toEqual([Array.from({ length: 16 }, (_, i) => i)])
      // Without it the first call goes alone and the rest wait for it.
      const eager = recording(0)
      await trickle(eager.b, (i) => i < 16)
      expect(eager.flushes[0]).toEqual([0])
    })

    test('it stops waiting after lingerMs however many keep coming, and a lone call waits no longer than a turn', async () => {
      const { b, flushes } = recording(2)
      const until = performance.now() + 30
      const calls = await trickle(b, () => performance.now() < until)
      expect(flushes.length).toBeGreaterThan(1)
      expect(flushes.flat()).toEqual(calls)

      const solo = recording(60_000)
      const answered = solo.b.add(7)
      await turn()
      await turn()
      expect(solo.flushes).toEqual([[7]])
      expect(await answered).toBe(7)
    })
  })
})

describe('relay', () => {
  test('steps handed over together run one at a time, in order, and idle waits for every one of them', async () => {
    const relay = createRelay()
    const ran: string[] = []
    let releaseFirst!: () => void
    const first = relay.next(async () => {
      ran.push('first')
      await new Promise<void>((r) => (releaseFirst = r))
      return 1
    })
    const second = relay.next(async () => {
      ran.push('second')
      return 2
    })
    let idle = false
    void relay.idle().then(() => (idle = true))
    await first.started
    await Bun.sleep(1)
    // The second waits its turn behind the first, which is still running; so does idle.
    expect(ran).toEqual(['first'])
    expect(idle).toBe(false)
    releaseFirst()
    expect(await Promise.all([first.done, second.done])).toEqual([1, 2])
    await Bun.sleep(1)
    expect(ran).toEqual(['first', 'second'])
    expect(idle).toBe(true)
  })
})
