import { describe, expect, test } from 'bun:test'
import { canCancel, canRetry, createTaskSchema, isTerminal, nextStatusAfterFailure, retryDelayMs, taskIdSchema } from './task'

describe('state machine', () => {
  test('only PENDING and PROCESSING tasks can be cancelled', () => {
    expect(['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED'].filter((s) => canCancel(s as never))).toEqual(['PENDING', 'PROCESSING'])
  })
  test('only FAILED and CANCELLED tasks can be retried', () => {
    expect(['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED'].filter((s) => canRetry(s as never))).toEqual(['FAILED', 'CANCELLED'])
  })
  test('COMPLETED, FAILED and CANCELLED are terminal', () => {
    expect(['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED'].filter((s) => isTerminal(s as never))).toEqual(['COMPLETED', 'FAILED', 'CANCELLED'])
  })
  test('a failed attempt is retried while attempts remain, then the task FAILs', () => {
    expect(nextStatusAfterFailure(1, 3)).toBe('PENDING')
    expect(nextStatusAfterFailure(2, 3)).toBe('PENDING')
    expect(nextStatusAfterFailure(3, 3)).toBe('FAILED')
    expect(nextStatusAfterFailure(1, 1)).toBe('FAILED')
  })
})

describe('retry backoff', () => {
  test('doubles per attempt, jittered between half and the whole step', () => {
    expect(retryDelayMs(1, 1000, () => 0)).toBe(500)
    expect(retryDelayMs(1, 1000, () => 1)).toBe(1000)
    expect(retryDelayMs(2, 1000, () => 1)).toBe(2000)
    expect(retryDelayMs(3, 1000, () => 0.5)).toBe(3000)
  })
  test('is capped at an hour', () => {
    expect(retryDelayMs(40, 1000, () => 1)).toBe(3_600_000)
  })
})

describe('input validation', () => {
  test('titles are trimmed and must have 1..200 characters', () => {
    expect(createTaskSchema.parse({ title: '  hi  ' }).title).toBe('hi')
    expect(createTaskSchema.safeParse({ title: '   ' }).success).toBe(false)
    expect(createTaskSchema.safeParse({ title: 'x'.repeat(201) }).success).toBe(false)
    expect(createTaskSchema.safeParse({ title: 'x'.repeat(200) }).success).toBe(true)
  })
  test('defaults: demo type, empty payload, three attempts', () => {
    expect(createTaskSchema.parse({ title: 't' })).toEqual({ title: 't', type: 'demo', payload: {}, max_attempts: 3, queue: 'default', priority: 0 })
  })
  test('payload must be an object and unknown fields are refused', () => {
    expect(createTaskSchema.safeParse({ title: 't', payload: [1] }).success).toBe(false)
    expect(createTaskSchema.safeParse({ title: 't', payload: 'x' }).success).toBe(false)
    expect(createTaskSchema.safeParse({ title: 't', colour: 'red' }).success).toBe(false)
  })
  test('ids are positive safe integers', () => {
    for (const bad of ['abc', '0', '-1', '1.5', '', '99999999999999999999']) expect(taskIdSchema.safeParse(bad).success).toBe(false)
    expect(taskIdSchema.parse('42')).toBe(42)
  })
})
