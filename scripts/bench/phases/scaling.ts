import { round, type Context, type ScalingFigure } from '../context'
import { measureCpu } from '../procfs'
import { startWorker, type Role } from '../system'
import { lifecycleLoad } from './lifecycle'
import { settle } from './settle'

/**
 * The same closed loop at one concurrency, with the worker processes given,
 * and the cores each side used meanwhile: whether a second worker adds
 * throughput depends on whether the worker or what it shares (api, Postgres,
 * the machine's cores) was the limit, and the CPU columns say which.
 */
async function closedLoop(ctx: Context, concurrency: number, workers: Role[]): Promise<ScalingFigure> {
  // Settled first so the window measures this load, not the tail of the one before.
  await settle(ctx)
  const api = ctx.api!.pid
  const pids = workers.map((w) => w.pid)
  const name = `scaling c${concurrency} ${workers.length} worker${workers.length === 1 ? '' : 's'}`
  // One "worker" group for all of them keeps the CPU table's columns the same as lifecycle's.
  const { figure, loadCores, cpu } = await lifecycleLoad(ctx, name, { concurrency }, () => measureCpu({ api: () => [api], worker: () => pids }))
  const cores = { ...cpu, load: loadCores }
  // Also in the CPU table, whose machine column shows how much of the two cores other work took.
  ctx.results.resources.cpu[name] = cores
  return { ...figure, workers: workers.length, cpu: cores }
}

/**
 * Lifecycle throughput with 1 and then 2 worker processes (same env, same
 * api), at the largest lifecycle concurrency. Informational: no target.
 */
export async function runScaling(ctx: Context) {
  const concurrency = ctx.opts.lifecycleConcurrencies.at(-1)!
  const first = (ctx.worker ??= await startWorker(ctx.env, ctx.port))
  // Quick mode has measured this very run (one worker, this api, this concurrency) in the lifecycle phase.
  const measured = ctx.results.lifecycle?.closed[concurrency]
  const cpu = ctx.results.resources.cpu[`lifecycle c${concurrency}`]
  const reuse = ctx.opts.mode === 'quick' && measured && cpu
  console.log(`scaling: closed loop c${concurrency}, 1 worker${reuse ? `: the lifecycle c${concurrency} run (quick mode)` : ''}`)
  const oneWorker = reuse ? { ...measured, workers: 1, cpu } : await closedLoop(ctx, concurrency, [first])
  console.log(`scaling: closed loop c${concurrency}, 2 workers`)
  const second = await startWorker(ctx.env, ctx.port)
  let twoWorkers: ScalingFigure
  try {
    twoWorkers = await closedLoop(ctx, concurrency, [first, second])
  } finally {
    // Later phases measure one worker (ctx.worker). SIGTERM lets the second finish what it runs and hand back the rest, which verify waits for.
    await second.stop()
  }
  ctx.results.scaling = {
    concurrency,
    oneWorker,
    twoWorkers,
    ratio: oneWorker.perSecond ? round(twoWorkers.perSecond / oneWorker.perSecond, 2) : null,
    ...(reuse ? { oneWorkerFrom: `lifecycle c${concurrency}` } : {}),
  }
}
