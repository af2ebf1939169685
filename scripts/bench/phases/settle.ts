import type { Context } from '../context'
import { startWorker } from '../system'

export async function activeTasks(ctx: Context): Promise<number> {
  const { rows } = await ctx.env.pool.query<{ n: string }>(`select count(*) as n from tasks where status in ('PENDING', 'PROCESSING')`)
  return Number(rows[0]!.n)
}

/**
 * Runs a worker until no task is PENDING or PROCESSING. A phase that starts
 * while tasks of an earlier one (create leaves them queued) are still being
 * worked through would measure that queue, not its own load.
 */
export async function settle(ctx: Context, timeoutMs = 120_000) {
  if ((await activeTasks(ctx)) === 0) return
  ctx.worker ??= await startWorker(ctx.env, ctx.port)
  console.log('settle: letting the worker finish earlier tasks first')
  const deadline = Date.now() + timeoutMs
  while ((await activeTasks(ctx)) > 0) {
    if (Date.now() > deadline) throw new Error(`tasks still active after ${timeoutMs} ms`)
    await Bun.sleep(200)
  }
}
