import { Hono } from 'hono'
import { z } from 'zod'
import * as schedules from '../../domain/schedules/schedule.service'
import { createScheduleSchema, scheduleIdSchema, scheduleSchema } from '../../domain/schedules/schedule'
import type { AppEnv } from '../auth'
import { describe, jsonResponse, validate } from '../openapi'
import { noQuery, requireJson } from '../validation'

const idParam = z.object({ id: scheduleIdSchema.meta({ description: 'schedule id' }) })
const scheduleList = z.object({ results: z.array(scheduleSchema) })
const oneSchedule = (description: string) => ({ 200: jsonResponse(description, scheduleSchema) })
const tags = ['schedules']

/** What /openapi.json says of each route, by operationId. */
const docs = {
  createSchedule: describe({
    operationId: 'createSchedule',
    tags,
    summary: 'Create a schedule',
    description:
      'At each tick of `cron` (read in `timezone`) one task is created from `task`, whose payload is checked now against its type ' +
      'as POST /api/tasks/ would check it. Ticks missed while no worker ran make one task on recovery, not one per tick.',
    responses: { 201: jsonResponse('created', scheduleSchema) },
    errors: { 400: true, 409: 'conflict: you have a schedule of that name already', 413: true, 415: true },
  }),
  listSchedules: describe({
    operationId: 'listSchedules',
    tags,
    summary: 'List schedules by name, each with its next run',
    description: 'A non-admin token sees its own schedules only.',
    responses: { 200: jsonResponse('every schedule', scheduleList) },
  }),
  getSchedule: describe({
    operationId: 'getSchedule',
    tags,
    summary: 'Get one schedule',
    responses: oneSchedule('the schedule'),
    errors: { 400: true, 404: true },
  }),
  pauseSchedule: describe({
    operationId: 'pauseSchedule',
    tags,
    summary: 'Pause a schedule',
    description: 'No tick creates a task until it is resumed. Pausing a paused schedule changes nothing.',
    responses: oneSchedule('the paused schedule'),
    errors: { 400: true, 404: true },
  }),
  resumeSchedule: describe({
    operationId: 'resumeSchedule',
    tags,
    summary: 'Resume a schedule',
    description: 'Ticks resume from now on; those that fell while it was paused are skipped.',
    responses: oneSchedule('the running schedule'),
    errors: { 400: true, 404: true, 409: 'conflict: its cron has no tick left' },
  }),
  deleteSchedule: describe({
    operationId: 'deleteSchedule',
    tags,
    summary: 'Delete a schedule',
    description: 'The tasks it created stay.',
    responses: { 204: { description: 'deleted' } },
    errors: { 400: true, 404: true },
  }),
}

/** /api/schedules: cron schedules that create tasks; the workers tick them (src/worker/scheduler.ts). */
export function schedulesRoutes(deps: schedules.ScheduleDeps) {
  return new Hono<AppEnv>()
    .post('/', docs.createSchedule, requireJson(), validate('json', createScheduleSchema), async (c) =>
      c.json(await schedules.createSchedule(deps, c.var.principal, c.req.valid('json')), 201),
    )
    .get('/', docs.listSchedules, validate('query', noQuery), async (c) => c.json({ results: await schedules.listSchedules(deps, c.var.principal) }))
    .get('/:id', docs.getSchedule, validate('param', idParam), async (c) => c.json(await schedules.getSchedule(deps, c.var.principal, c.req.valid('param').id)))
    .post('/:id/pause', docs.pauseSchedule, validate('param', idParam), async (c) =>
      c.json(await schedules.pauseSchedule(deps, c.var.principal, c.req.valid('param').id)),
    )
    .post('/:id/resume', docs.resumeSchedule, validate('param', idParam), async (c) =>
      c.json(await schedules.resumeSchedule(deps, c.var.principal, c.req.valid('param').id)),
    )
    .delete('/:id', docs.deleteSchedule, validate('param', idParam), async (c) => {
      await schedules.deleteSchedule(deps, c.var.principal, c.req.valid('param').id)
      return c.body(null, 204)
    })
}
