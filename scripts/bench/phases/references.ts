import { expectReply, spawnChild } from '../children'
import { cpuPerTaskUs, round, runLoad, type Context } from '../context'
import { runPgbench } from '../pgbench'
import { measureCpu } from '../procfs'
import type { ReferenceJob } from '../reference-loop'
import { freePort, redisUrl } from '../system'
import { httpLoad } from './http-figure'

/**
 * The three reference loops every figure is judged against, run before the
 * system starts so they have the machine to themselves.
 */
export async function runReferences(ctx: Context) {
  const { opts, env, results } = ctx
  const refs = results.references

  console.log('references: pgbench (c16, j2)')
  const pgb = await runPgbench(env.pool, env.databaseUrl, opts.pgbenchSeconds)
  refs.pgbenchLifecycleTps = round(pgb.lifecycle)
  refs.pgbenchInsertTps = round(pgb.insert)

  console.log(`references: bare pg+ioredis loop x${opts.referenceLoops}`)
  // The whole machine (loop, Postgres, Redis), warm-up included: the same work per task throughout.
  const cpu = measureCpu({})
  const loop = await runLoad<{ tasksPerSecond: number }>('reference-loop', 'reference-loop.ts', {
    databaseUrl: env.databaseUrl,
    redisUrl,
    keyPrefix: env.keyPrefix,
    loops: opts.referenceLoops,
    warmupMs: opts.warmupMs,
    durationMs: opts.windowMs,
  } satisfies ReferenceJob)
  refs.loopTasksPerSecond = round(loop.tasksPerSecond)
  refs.loopCpuPerTaskUs = cpuPerTaskUs(cpu.stop().machine, loop.tasksPerSecond)

  console.log('references: Bun hello-world server')
  const port = freePort()
  const hello = spawnChild('hello-server', ['bun', 'scripts/bench/hello-server.ts'], { PORT: port })
  try {
    await expectReply(hello, 'ready', 10_000)
    refs.hello = {}
    for (const c of opts.httpConcurrencies) {
      const { figure } = await httpLoad(`hello c${c}`, {
        url: `http://127.0.0.1:${port}/`,
        method: 'GET',
        concurrency: c,
        warmupMs: opts.warmupMs,
        durationMs: opts.windowMs,
      })
      refs.hello[c] = figure
    }
  } finally {
    await hello.stop()
  }
}
