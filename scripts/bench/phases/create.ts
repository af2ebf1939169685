import type { Context } from '../context'
import { measureCpu } from '../procfs'
import { httpLoad } from './http-figure'

export const createBody = { title: 'bench task', payload: { duration_ms: 0 } }

/** POSTs exactly `count` tasks from 64 clients (to fill a backlog or have tasks to watch); returns the rate. */
export async function postTasks(ctx: Context, name: string, count: number): Promise<number> {
  const { figure, raw } = await httpLoad(name, {
    url: `${ctx.api!.url}/api/tasks/`,
    method: 'POST',
    body: createBody,
    concurrency: 64,
    warmupMs: 0,
    durationMs: 0,
    count,
    token: ctx.env.token,
  })
  ctx.posted += raw.created
  return figure.perSecond
}

/** POST /api/tasks/ with the worker stopped: the API, Postgres and the XADD, nothing else; where the cores went, over each window. */
export async function runCreate(ctx: Context) {
  if (ctx.worker) throw new Error('create runs with the worker stopped')
  ctx.results.create = {}
  for (const c of ctx.opts.httpConcurrencies) {
    console.log(`create: c${c}`)
    const api = ctx.api!.pid
    const { figure, raw, cores } = await httpLoad(
      `create c${c}`,
      {
        url: `${ctx.api!.url}/api/tasks/`,
        method: 'POST',
        body: createBody,
        concurrency: c,
        warmupMs: ctx.opts.warmupMs,
        durationMs: ctx.opts.windowMs,
        token: ctx.env.token,
      },
      (load) => measureCpu({ api: () => [api], load: () => [load] }),
    )
    ctx.posted += raw.created
    ctx.results.create[c] = figure
    if (cores) ctx.results.resources.cpu[`create c${c}`] = cores
  }
}
