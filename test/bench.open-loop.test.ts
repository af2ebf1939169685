import { describe, expect, test } from 'bun:test'
import { dueAt, dueCount } from '../scripts/bench/open-loop'

describe('bench open loop schedule', () => {
  test('each request goes out when it is due, not one interval later, and is timed from then', () => {
    // 200/s: one every 5 ms, the first at once.
    expect(dueCount(0, 200)).toBe(1)
    expect(dueCount(4.9, 200)).toBe(1)
    expect(dueCount(5, 200)).toBe(2)
    expect(dueCount(1000, 200)).toBe(201)
    // The request sent once two are due is the second, due 5 ms after the start.
    expect(dueAt(100, 1, 200)).toBe(105)
    expect(dueAt(100, 0, 200)).toBe(100)
  })
})
