import { expect, test } from 'bun:test'
import type { TaskChange } from '../src/domain/task-events/task-event'
import type { Execution } from '../src/worker/execution'
import { AbortReason } from '../src/worker/run'
import { TaskRunner } from '../src/worker/task-runner'

/**
 * What the job consumer asks before a job may wake the pump: a task whose
 * run is in hand and going was claimed by the look that answered its job; an
 * aborted run (a cancel) holds nothing, so the retry's job must wake it.
 */
test('a task is held while its run goes on, not once the run is aborted, and not after it ends', async () => {
  let finish = () => {}
  // Pure bookkeeping under test: the run's execution is a promise the test settles.
  const execution = {
    progressFor: () => ({}),
    execute: () => new Promise<void>((resolve) => (finish = resolve)),
  } as unknown as Execution
  const runner = new TaskRunner({ workerId: 'w', concurrency: 2, execution })
  runner.start({ id: 7, attempts: 1 } as TaskChange)
  expect(runner.holds(7)).toBe(true)
  expect(runner.holds(8)).toBe(false)
  // Aborted but not yet ended (its handler winds down): still in running, no longer held.
  runner.abort(7, new AbortReason('cancelled'))
  expect(runner.running.has(7)).toBe(true)
  expect(runner.holds(7)).toBe(false)
  finish()
  await runner.running.get(7)?.done
  expect(runner.running.has(7)).toBe(false)
  expect(runner.holds(7)).toBe(false)
})
