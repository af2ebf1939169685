import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { repoRoot } from '../children'
import type { Context } from '../context'
import { parseCpuProfile, summarise } from '../cpu-profile'
import { startApi, startWorker } from '../system'
import { lifecycleLoad } from './lifecycle'
import { settle } from './settle'

const roles = ['api', 'worker'] as const

/**
 * The profile behind the lifecycle figures: the API and the worker run under
 * Bun's sampling profiler twice, once only started (and asked for /readyz),
 * once through a closed loop at the first of lifecycleConcurrencies; each run's
 * profile is written when the role exits. The load's profile less the
 * start-up's says where the load's CPU went in each role. Its tasks count
 * towards the integrity check; the roles are started again, unprofiled, for
 * what follows.
 */
export async function runProfile(ctx: Context) {
  const concurrency = ctx.opts.lifecycleConcurrencies[0]!
  const dir = mkdtempSync(join(tmpdir(), 'taskline-bench-profile-'))
  try {
    await ctx.worker?.stop()
    await ctx.api?.stop()
    ctx.worker = null
    console.log('profile: start-up alone, then a closed loop, each under --cpu-prof')
    const startup = await profiled(ctx, dir, 'startup', async () => {})
    const loaded = await profiled(ctx, dir, 'loaded', async () => {
      await settle(ctx)
      await lifecycleLoad(ctx, `profile c${concurrency}`, { concurrency })
    })
    ctx.results.profile = {
      concurrency,
      roles: Object.fromEntries(roles.map((r) => [r, summarise(loaded[r], startup[r], repoRoot.replace(/\/$/, ''))])) as never,
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
    ctx.api = await startApi(ctx.env, ctx.port)
    ctx.worker = await startWorker(ctx.env, ctx.port)
  }
}

/** Both roles started under the profiler, `work` run, both stopped: each role's self-time table. */
async function profiled(ctx: Context, dir: string, run: string, work: () => Promise<void>) {
  const args = (role: string) => ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${run}-${role}.cpuprofile`]
  ctx.api = await startApi(ctx.env, ctx.port, args('api'))
  ctx.worker = await startWorker(ctx.env, ctx.port, undefined, 'reading', args('worker'))
  try {
    await work()
  } finally {
    await ctx.worker.stop()
    await ctx.api.stop()
    ctx.worker = null
    ctx.api = null
  }
  return Object.fromEntries(roles.map((r) => [r, parseCpuProfile(JSON.parse(readFileSync(join(dir, `${run}-${r}.cpuprofile`), 'utf8')))])) as Record<
    (typeof roles)[number],
    ReturnType<typeof parseCpuProfile>
  >
}
