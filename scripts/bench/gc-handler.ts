/**
 * A task type the bench's workers load (HANDLERS) so the backlog phase can
 * read the worker's heap after a full collection while it drains: each
 * `bench-gc` task forces one (Bun.gc(true)) and returns the heap left, which
 * the bench reads from the task's result. A worker with no such task to run
 * does nothing different; a user's worker loads handler modules the same way.
 */
import { heapStats } from 'bun:jsc'
import { z } from 'zod'
import { defineHandler } from '../../src/handlers/handler'

export const gcTaskType = 'bench-gc'

export interface GcResult {
  /** JS heap in use right after the collection: what the worker keeps. */
  heap_size_bytes: number
  /** process.memoryUsage().heapUsed at the same moment: what prom-client reports as nodejs_heap_size_used_bytes. */
  heap_used_bytes: number
  objects: number
}

export default {
  [gcTaskType]: defineHandler({
    payload: z.strictObject({}),
    async run(): Promise<GcResult> {
      Bun.gc(true)
      const stats = heapStats()
      return { heap_size_bytes: stats.heapSize, heap_used_bytes: process.memoryUsage().heapUsed, objects: stats.objectCount }
    },
  }),
}
