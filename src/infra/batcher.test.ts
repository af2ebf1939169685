import { describe, expect, test } from 'bun:test'
import { createBatcher } from './batcher'

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
    const b = createBatcher(async (items: number[]) => {
      flushes.push(items)
      await gate
      return items
    }, 3)
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
})
