import { describe, expect, test } from 'bun:test'
import { keepUnsent, ReplayedCursors } from './replay'
import type { StreamedEvent } from '../../domain/task-events/task-event'

describe('the cursors an all-tasks replay has sent', () => {
  test('remembers recent cursors exactly, so a live event with a lower, unsent cursor still passes', () => {
    const sent = new ReplayedCursors(10, 4)
    for (const c of [11, 12, 14]) sent.add(c)
    expect(sent.has(12)).toBe(true)
    expect(sent.has(13)).toBe(false) // committed after the page that skipped it: new
    expect(sent.has(10)).toBe(true) // at or below ?after=: the client had it
  })

  test('holds at most two generations, taking everything older as sent', () => {
    const sent = new ReplayedCursors(0, 100)
    for (let c = 1; c <= 100_000; c += 2) sent.add(c)
    expect(sent.size).toBeLessThanOrEqual(200)
    expect(sent.has(99_999)).toBe(true)
    expect(sent.has(99_998)).toBe(false) // recent, not sent
    expect(sent.has(2)).toBe(true) // long past: counted as sent
  })
})

test('keepUnsent keeps the events that pass, in order, in place', () => {
  const events = [1, 2, 3, 4, 5].map((seq) => ({ seq }) as StreamedEvent)
  keepUnsent(events, (e) => e.seq % 2 === 1)
  expect(events.map((e) => e.seq)).toEqual([1, 3, 5])
})
