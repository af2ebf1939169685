import { describe, expect, expectTypeOf, test } from 'bun:test'
import { readdir } from 'node:fs/promises'
import type { z } from 'zod'
import type * as serverStatus from '../domain/tasks/task-status'
import type { createTaskSchema, deleteFinishedTasksQuerySchema, Task as ServerTask, taskSchema, updateTaskSchema } from '../domain/tasks/task'
import type { taskEventSchema } from '../domain/task-events/task-event'
import type { taskTypeSchema } from '../domain/task-types/task-type'
import type { createScheduleSchema, scheduleSchema } from '../domain/schedules/schedule'
import type { CreateScheduleInput, Queue, Schedule, Stats, Worker } from './types'
import type { queueSchema } from '../domain/queues/queue'
import type { statsSchema } from '../domain/stats/stats'
import type { workerSchema } from '../domain/workers/worker'
import type * as clientStatus from './task-status'
import type {
  CreateTaskInput,
  DeleteFinishedTasksQuery,
  ListTasksQuery,
  Task,
  TaskEvent,
  TaskSnapshotMessage,
  TaskStatus,
  TaskTypeInfo,
  UpdateTaskInput,
} from './types'

/**
 * The client declares the API's shapes again (types.ts) so that it needs no
 * server module. These checks hold each copy equal to the server's own, so
 * neither can change alone. The expectTypeOf lines are checked by tsc
 * (test/typecheck.test.ts); the response types the server keeps inside its
 * route files are compared with /openapi.json in test/client.api.test.ts.
 */
describe("the client's types are the server's", () => {
  test('Task, TaskEvent, TaskTypeInfo and the request bodies', () => {
    expectTypeOf<Task>().toEqualTypeOf<z.output<typeof taskSchema>>()
    // What the server builds from a row (result a JSON value) is a Task as the schema promises it (result unknown).
    expectTypeOf<ServerTask>().toExtend<Task>()
    expectTypeOf<TaskEvent>().toEqualTypeOf<z.output<typeof taskEventSchema>>()
    expectTypeOf<TaskTypeInfo>().toEqualTypeOf<z.output<typeof taskTypeSchema>>()
    expectTypeOf<CreateTaskInput>().toEqualTypeOf<z.input<typeof createTaskSchema>>()
    expectTypeOf<UpdateTaskInput>().toEqualTypeOf<z.input<typeof updateTaskSchema>>()
    expectTypeOf<TaskStatus>().toEqualTypeOf<serverStatus.TaskStatus>()
    expectTypeOf<NonNullable<ListTasksQuery['status']>>().toEqualTypeOf<serverStatus.TaskStatus>()
    expectTypeOf<TaskSnapshotMessage['task']>().toEqualTypeOf<Task>()
    expectTypeOf<DeleteFinishedTasksQuery>().toEqualTypeOf<z.input<typeof deleteFinishedTasksQuerySchema>>()
  })

  test('Queue, Stats, Worker', () => {
    expectTypeOf<Queue>().toEqualTypeOf<z.output<typeof queueSchema>>()
    expectTypeOf<Stats>().toEqualTypeOf<z.output<typeof statsSchema>>()
    expectTypeOf<Worker>().toEqualTypeOf<z.output<typeof workerSchema>>()
  })

  test('Schedule and its create body', () => {
    expectTypeOf<Schedule>().toEqualTypeOf<z.output<typeof scheduleSchema>>()
    expectTypeOf<CreateScheduleInput>().toEqualTypeOf<z.input<typeof createScheduleSchema>>()
  })

  test('the status list is exactly the database enum', () => {
    expectTypeOf<(typeof clientStatus.taskStatuses)[number]>().toEqualTypeOf<serverStatus.TaskStatus>()
  })
})

test('no client module imports anything outside src/client', async () => {
  const outside: string[] = []
  for (const name of await readdir(import.meta.dir)) {
    if (!name.endsWith('.ts') || name.endsWith('.test.ts')) continue
    const code = await Bun.file(`${import.meta.dir}/${name}`).text()
    for (const m of code.matchAll(/(?:\bfrom\s*|^\s*import\s*|\bimport\s*\(\s*)['"]([^'"]+)['"]/gm)) {
      if (!/^\.\/[\w.-]+$/.test(m[1]!)) outside.push(`${name}: ${m[1]}`)
    }
  }
  expect(outside).toEqual([])
})
