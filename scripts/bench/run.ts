/**
 * `bun run bench [--full] [--cluster] [--only phase,...]`: starts Taskline as a user runs
 * it (api and worker as separate processes on a fresh database and key
 * prefix), drives it from separate load processes, runs the reference loops
 * it is judged against, and prints a table and one JSON line. Everything it
 * starts or creates is removed at the end, on failure and on Ctrl-C.
 */
import { availableParallelism, cpus, totalmem } from 'node:os'
import { killAllNow, stopAll } from './children'
import { MiB, type Context, type Results } from './context'
import { type Options, parseOptions } from './options'
import { loadAverage, rssBytes } from './procfs'
import { performanceDoc, printReport } from './report'
import { configurationMeasured, freePort, prepareEnvironment, startApi, startWorker, type BenchEnv } from './system'
import { runBacklog } from './phases/backlog'
import { runCluster, stopCluster } from './phases/cluster'
import { runCreate } from './phases/create'
import { runLifecycle } from './phases/lifecycle'
import { runProfile } from './phases/profile'
import { runReferences } from './phases/references'
import { runScaling } from './phases/scaling'
import { runSockets } from './phases/sockets'
import { verify } from './phases/verify'

let opts: Options
try {
  opts = parseOptions(Bun.argv.slice(2))
} catch (e) {
  console.error((e as Error).message)
  process.exit(2)
}

let env: BenchEnv | null = null
let cleaning: Promise<void> | null = null
const cleanup = () =>
  (cleaning ??= (async () => {
    await stopAll()
    await stopCluster()
    await env?.cleanup()
  })())

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\nbench: ${signal}; stopping children, dropping the database, deleting keys`)
    // A second Ctrl-C while cleaning up means "now": kill without waiting.
    process.once(signal, () => {
      killAllNow()
      process.exit(130)
    })
    cleanup().finally(() => process.exit(130))
  })
}

const ulimit = Bun.spawnSync(['bash', '-c', 'ulimit -n']).stdout.toString().trim()
const results: Results = {
  mode: opts.mode,
  startedAt: new Date().toISOString(),
  machine: {
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    ulimitNofile: ulimit,
    loadAverageStart: loadAverage(),
  },
  configuration: configurationMeasured,
  references: {},
  resources: { cpu: {} },
  phaseSeconds: {},
}
// Server and client sockets of the many-sockets phases share this machine's fd limit.
const socketProcesses = Math.max(opts.socketProcesses, Math.ceil(opts.manySockets / Math.max(1, Number(ulimit) - 500)))
opts.socketProcesses = Math.min(4, socketProcesses)

const started = performance.now()
const has = (p: Parameters<typeof opts.phases.has>[0]) => opts.phases.has(p)
let ctx: Context | null = null
/** Runs one phase and keeps its wall time: quick mode has a minute for all of them. */
async function timed(name: string, phase: () => Promise<void>) {
  const t0 = performance.now()
  await phase()
  results.phaseSeconds![name] = Math.round((performance.now() - t0) / 100) / 10
}
try {
  console.log(`bench: ${opts.mode} mode, phases ${[...opts.phases].join(', ')}`)
  console.log(`bench: ${configurationMeasured}`)
  const setupFrom = performance.now()
  env = await prepareEnvironment()
  results.phaseSeconds!.setup = Math.round((performance.now() - setupFrom) / 100) / 10
  console.log(`bench: database ${env.dbName}, key prefix ${env.keyPrefix}`)
  const c: Context = { opts, env, port: freePort(), api: null, worker: null, results, posted: 0, socketMissing: 0, socketDuplicates: 0 }
  ctx = c

  if (has('references')) await timed('references', () => runReferences(c))

  await timed('api start', async () => {
    c.api = await startApi(c.env, c.port)
    // Idle figures: the API with no load, and a worker that has started and is waiting for jobs.
    await Bun.sleep(opts.idleMs)
    results.resources.idle = { apiMiB: MiB(rssBytes(c.api.pid)), workerMiB: null }
  })

  if (has('create')) await timed('create', () => runCreate(c))
  if (has('backlog')) await timed('backlog', () => runBacklog(c))
  if (has('lifecycle') || has('scaling') || has('events') || has('fanout') || has('cluster')) {
    c.worker ??= await startWorker(c.env, c.port)
  }
  if (c.worker) {
    await Bun.sleep(opts.idleMs)
    results.resources.idle!.workerMiB = MiB(rssBytes(c.worker.pid))
  }
  if (has('lifecycle')) await timed('lifecycle', () => runLifecycle(c))
  if (has('scaling')) await timed('scaling', () => runScaling(c))
  if (has('events') || has('fanout')) await timed('sockets', () => runSockets(c, { events: has('events'), fanout: has('fanout') }))
  if (has('profile')) await timed('profile', () => runProfile(c))
  // Last: it restarts the roles on a Redis Cluster of its own and leaves none running.
  if (has('cluster')) await timed('cluster', () => runCluster(c))
  if (has('create') || has('backlog') || has('lifecycle') || has('scaling') || has('events') || has('fanout') || has('profile') || has('cluster')) {
    console.log('verify: waiting for every task to finish, then counting')
    await timed('verify', () => verify(c))
  }
  results.machine.loadAverageEnd = loadAverage()
  console.log(
    `bench: measured in ${((performance.now() - started) / 1000).toFixed(0)} s (${Object.entries(results.phaseSeconds!)
      .map(([k, v]) => `${k} ${v} s`)
      .join(', ')}); cleaning up`,
  )
  const cleaningFrom = performance.now()
  await cleanup()
  console.log(`bench: cleaned up in ${((performance.now() - cleaningFrom) / 1000).toFixed(1)} s`)
  printReport(results, opts.manySockets)
  if (opts.write) {
    await Bun.write(opts.write, performanceDoc(results, opts.manySockets))
    console.log(`bench: wrote ${opts.write}`)
  }
} catch (e) {
  console.error(`bench failed: ${e instanceof Error ? e.message : String(e)}`)
  // The roles' last log lines usually say why.
  for (const [name, role] of [
    ['api', ctx?.api],
    ['worker', ctx?.worker],
  ] as const) {
    const tail = role?.child.tail()
    if (tail) console.error(`last lines of the ${name}'s log:\n${tail}`)
  }
  process.exitCode = 1
} finally {
  await cleanup()
}
