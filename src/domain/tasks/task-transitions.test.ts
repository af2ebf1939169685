import { describe, expect, test } from 'bun:test'
import { transitions } from './task-transitions'

// The table is the rules of a task's life: changing one of them must be a decision this test is updated for.
describe('task transitions', () => {
  test('each leaves from its statuses, moves to its status and is counted under its label', () => {
    const table = Object.fromEntries(Object.entries(transitions).map(([name, t]) => [name, [t.from.join(' '), t.to, t.metric]]))
    expect(table).toEqual({
      create: ['', 'PENDING', 'created'],
      claim: ['PENDING', 'PROCESSING', null],
      reportProgress: ['PROCESSING', null, null],
      complete: ['PROCESSING', 'COMPLETED', 'completed'],
      failAndRetry: ['PROCESSING', 'PENDING', 'retried'],
      fail: ['PROCESSING', 'FAILED', 'failed'],
      handBack: ['PROCESSING', 'PENDING', null],
      recover: ['PROCESSING', 'PENDING', 'retried'],
      leaseLost: ['PROCESSING', 'FAILED', 'failed'],
      cancel: ['PENDING PROCESSING', 'CANCELLED', 'cancelled'],
      retryByRequest: ['FAILED CANCELLED', 'PENDING', 'retried'],
      dependencyFailed: ['PENDING', 'FAILED', 'failed'],
      rename: ['PENDING PROCESSING COMPLETED FAILED CANCELLED', null, null],
    })
  })

  test('a finished task is left alone by everything but a retry request and a rename', () => {
    const fromFinished = Object.entries(transitions)
      .filter(([, t]) => t.from.some((s) => s === 'COMPLETED' || s === 'FAILED' || s === 'CANCELLED'))
      .map(([name]) => name)
    expect(fromFinished).toEqual(['retryByRequest', 'rename'])
  })

  test('what each sets and records', () => {
    const failure = { error: 'boom', attempt: 2, retryInMs: 500 }
    expect(Object.keys(transitions.failAndRetry.set(failure)).sort()).toEqual(['enqueued_at', 'error', 'locked_by', 'locked_until', 'run_after'])
    expect(transitions.failAndRetry.detail(failure)).toEqual({ error: 'boom', attempt: 2, retry_in_ms: 500 })
    expect(Object.keys(transitions.fail.set(failure)).sort()).toEqual(['enqueued_at', 'error', 'finished_at', 'locked_by', 'locked_until'])
    expect(transitions.fail.detail(failure)).toEqual({ error: 'boom', attempt: 2 })
    expect(Object.keys(transitions.retryByRequest.set()).sort()).toEqual([
      'attempts',
      'enqueued_at',
      'error',
      'finished_at',
      'progress',
      'result',
      'run_after',
      'started_at',
    ])
    expect(transitions.cancel.detail()).toEqual({ reason: 'cancelled by request' })
    expect(transitions.retryByRequest.detail()).toEqual({ reason: 'retried by request' })
    expect(transitions.rename.detail({ title: 't' })).toEqual({ title: 't' })
    expect(Object.keys(transitions.dependencyFailed.set()).sort()).toEqual(['enqueued_at', 'error', 'finished_at', 'locked_by', 'locked_until'])
  })
})
