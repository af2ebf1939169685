import type { Context } from '../context'
import { startWorker } from '../system'

export async function activeTasks(ctx: Context): Promise<number> {
  const { rows } = await ctx.env.pool.query<{ n: string }>(`select count(*) as n from tasks where status in ('PENDING', 'PROCESSING')`)
  return Number(rows[0]!.n)
}

/**
 * Runs a worker until no task is PENDING or PROCESSING, then vacuums. A phase
 * that starts while tasks of an earlier one (create leaves them queued) are
 * still being worked through would measure that queue, not its own load; and
 * one that starts on the dead rows of the phase before (this server may run
 * without autovacuum) would measure their cost in every index scan.
 */
export async function settle(ctx: Context, timeoutMs = 120_000) {
  if ((await activeTasks(ctx)) > 0) {
    ctx.worker ??= await startWorker(ctx.env, ctx.port)
    console.log('settle: letting the worker finish earlier tasks first')
    const deadline = Date.now() + timeoutMs
    while ((await activeTasks(ctx)) > 0) {
      if (Date.now() > deadline) throw new Error(`tasks still active after ${timeoutMs} ms`)
      await Bun.sleep(200)
    }
  }
  await vacuum(ctx)
}

/** What autovacuum does between bursts, done now so that every phase starts from the same footing. */
export async function vacuum(ctx: Context) {
  await ctx.env.pool.query('vacuum analyze')
}
