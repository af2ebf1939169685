/**
 * Shared by every load process: replies to the orchestrator over IPC, and
 * exits when the orchestrator is gone (killed with SIGKILL it cannot clean up,
 * and an orphaned load generator would keep hammering the shared services).
 */
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) process.exit(1)
}, 500).unref()

/** Every reply carries the process's own CPU time, so the report can show what the load generator cost. */
export function reply(message: Record<string, unknown>) {
  const cpu = process.cpuUsage()
  process.send?.({ ...message, cpuSeconds: (cpu.user + cpu.system) / 1e6, uptimeMs: performance.now() })
}

export function onCommand(handler: (m: any) => void | Promise<void>) {
  process.on('message', (m: any) => {
    Promise.resolve(handler(m)).catch(fail)
  })
}

/** Reports the error to the orchestrator, then exits once the IPC message is out. */
export function fail(e: unknown): void {
  reply({ type: 'error', message: e instanceof Error ? e.message : String(e) })
  setTimeout(() => process.exit(1), 100)
}

/** The child's job description, passed as JSON in BENCH_JOB so argv stays short. */
export function job<T>(): T {
  const raw = process.env.BENCH_JOB
  if (!raw) throw new Error('BENCH_JOB is not set; this file is started by scripts/bench/run.ts')
  return JSON.parse(raw) as T
}
