import type { Context } from '../context'
import { settle } from './settle'

/**
 * Nothing lost, nothing doubled: every task a load process saw created is a
 * row, every row reached COMPLETED, each has exactly one COMPLETED event, and
 * every task the lifecycle sockets waited for was seen completing once.
 */
export async function verify(ctx: Context) {
  const q = async <T>(text: string) => (await ctx.env.pool.query(text)).rows as T[]
  const notes: string[] = []
  await settle(ctx).catch((e) => notes.push((e as Error).message))
  const byStatus = Object.fromEntries(
    (await q<{ status: string; n: string }>(`select status, count(*) as n from tasks group by status order by status`)).map((r) => [r.status, Number(r.n)]),
  )
  const rows = Object.values(byStatus).reduce((a, b) => a + b, 0)
  const [bad] = await q<{ n: string }>(`
    select count(*) as n from tasks t
    where (select count(*) from task_events e where e.task_id = t.id and e.status = 'COMPLETED') <> 1`)
  const completedEventsNot1 = Number(bad!.n)
  if (rows !== ctx.posted) notes.push(`${ctx.posted} tasks created by POST but ${rows} rows`)
  if ((byStatus.COMPLETED ?? 0) !== rows) notes.push(`${rows - (byStatus.COMPLETED ?? 0)} tasks not COMPLETED`)
  if (completedEventsNot1) notes.push(`${completedEventsNot1} tasks without exactly one COMPLETED event`)
  if (ctx.socketMissing) notes.push(`${ctx.socketMissing} tasks never seen COMPLETED on the socket`)
  if (ctx.socketDuplicates) notes.push(`${ctx.socketDuplicates} COMPLETED events seen twice on the socket`)
  ctx.results.integrity = {
    ok: notes.length === 0,
    posted: ctx.posted,
    rows,
    byStatus,
    completedEventsNot1,
    socketMissing: ctx.socketMissing,
    socketDuplicates: ctx.socketDuplicates,
    notes,
  }
}
