import type { Context, TaskCheck } from '../context'
import { settle } from './settle'

/** What the load processes saw of some tasks: how many they created, and what their sockets missed or saw twice. */
export interface Seen {
  posted: number
  socketMissing: number
  socketDuplicates: number
}

/**
 * Nothing lost, nothing doubled among the rows with id > afterId (all of them
 * by default): every task a load process saw created is a row, every row
 * reached COMPLETED, each has exactly one COMPLETED event, and every task the
 * lifecycle sockets waited for was seen completing once. Counts as things are:
 * settle first.
 */
export async function checkTasks(ctx: Context, seen: Seen, afterId = 0, notes: string[] = []): Promise<TaskCheck> {
  const q = async <T>(text: string, values: unknown[] = []) => (await ctx.env.pool.query(text, values)).rows as T[]
  const byStatus = Object.fromEntries(
    (await q<{ status: string; n: string }>(`select status, count(*) as n from tasks where id > $1 group by status order by status`, [afterId])).map((r) => [
      r.status,
      Number(r.n),
    ]),
  )
  const rows = Object.values(byStatus).reduce((a, b) => a + b, 0)
  const [bad] = await q<{ n: string }>(
    `select count(*) as n from tasks t
     where t.id > $1 and (select count(*) from task_events e where e.task_id = t.id and e.status = 'COMPLETED') <> 1`,
    [afterId],
  )
  const completedEventsNot1 = Number(bad!.n)
  if (rows !== seen.posted) notes.push(`${seen.posted} tasks created by POST but ${rows} rows`)
  if ((byStatus.COMPLETED ?? 0) !== rows) notes.push(`${rows - (byStatus.COMPLETED ?? 0)} tasks not COMPLETED`)
  if (completedEventsNot1) notes.push(`${completedEventsNot1} tasks without exactly one COMPLETED event`)
  if (seen.socketMissing) notes.push(`${seen.socketMissing} tasks never seen COMPLETED on the socket`)
  if (seen.socketDuplicates) notes.push(`${seen.socketDuplicates} COMPLETED events seen twice on the socket`)
  return {
    ok: notes.length === 0,
    posted: seen.posted,
    rows,
    byStatus,
    completedEventsNot1,
    socketMissing: seen.socketMissing,
    socketDuplicates: seen.socketDuplicates,
    notes,
  }
}

/** The whole run's tasks, once every one has finished. */
export async function verify(ctx: Context) {
  const notes: string[] = []
  await settle(ctx).catch((e) => notes.push((e as Error).message))
  ctx.results.integrity = await checkTasks(ctx, ctx, 0, notes)
}
