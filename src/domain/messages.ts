/**
 * Glossary
 * - task: a row in `tasks`, the source of truth for one unit of work.
 * - job: an entry on the jobs stream saying "task N may be due"; it carries only
 *   the id, so a stale or duplicate job is harmless: the worker re-reads the row
 *   and its claim decides whether there is anything to run.
 * - transition: one way a task may change (claim, complete, cancel, ...): the
 *   statuses it leaves from, what it sets, its event and metric, declared in
 *   tasks/task-transitions.ts; a task in any other status is left as it is.
 * - attempt: one run of a task's handler; `attempts` counts them.
 * - lease: (locked_by, locked_until) on a PROCESSING task; a live worker keeps
 *   extending it, an expired one means its worker died and the attempt is lost.
 * - event: a row in `task_events` for every change of a task (its `seq` bumps),
 *   also XADDed to the events stream, which every API instance fans out to
 *   sockets. Its id is the cursor a client resumes from. The message and its
 *   conversions live in task-events/task-event.ts.
 */
import { z } from 'zod'

export const jobMessageSchema = z.object({ task_id: z.coerce.number().int().positive() })
export type JobMessage = z.infer<typeof jobMessageSchema>

/** Reads ioredis' flat [k1, v1, k2, v2] field list. */
export function fieldsToRecord(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!
  return out
}
