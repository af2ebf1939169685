import type { Subprocess } from 'bun'

/**
 * Every process the bench starts, so that a failure, Ctrl-C or a normal end
 * kills all of them: a stray API or load process would skew the next run.
 */
const alive = new Set<Subprocess>()

export const repoRoot = new URL('../..', import.meta.url).pathname

export interface Child {
  name: string
  proc: Subprocess
  pid: number
  /** Messages the child sent over IPC, in order, until someone takes them. */
  next<T = any>(match: (m: any) => boolean, timeoutMs?: number): Promise<T>
  send(message: unknown): void
  /** The last lines of its stderr, to explain a failure. */
  tail(): string
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>
  exited: Promise<number>
}

/** The child's environment: ours, with `env` on top; undefined leaves ours as it is, null removes it (a setting left at its default). */
export function childEnv(env: Record<string, string | number | null | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...process.env }
  for (const [k, v] of Object.entries(env)) {
    if (v === null) delete out[k]
    else if (v !== undefined) out[k] = String(v)
  }
  return out
}

export function spawnChild(name: string, cmd: string[], env: Record<string, string | number | null | undefined> = {}): Child {
  const inbox: any[] = []
  const waiters: { match: (m: any) => boolean; resolve: (m: any) => void }[] = []
  let stderr = ''
  const proc = Bun.spawn(cmd, {
    cwd: repoRoot,
    env: childEnv(env),
    stdin: 'ignore',
    stdout: 'inherit',
    stderr: 'pipe',
    serialization: 'json',
    ipc(message) {
      const i = waiters.findIndex((w) => w.match(message))
      if (i >= 0) waiters.splice(i, 1)[0]!.resolve(message)
      else inbox.push(message)
    },
  })
  alive.add(proc)
  // Drain stderr so a chatty child never blocks on a full pipe; keep the tail for error messages.
  ;(async () => {
    const decoder = new TextDecoder()
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
      stderr = (stderr + decoder.decode(chunk, { stream: true })).slice(-8000)
    }
  })().catch(() => {})
  const exited = proc.exited.then((code) => {
    alive.delete(proc)
    return code
  })
  const child: Child = {
    name,
    proc,
    pid: proc.pid,
    exited,
    tail: () => stderr.trim().split('\n').slice(-15).join('\n'),
    send: (m) => proc.send(m),
    next(match, timeoutMs = 120_000) {
      const i = inbox.findIndex(match)
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0])
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no expected message within ${timeoutMs} ms\n${child.tail()}`)), timeoutMs)
        const waiter = {
          match,
          resolve: (m: any) => {
            clearTimeout(timer)
            resolve(m)
          },
        }
        waiters.push(waiter)
        // A child that dies first would otherwise leave us waiting for the full timeout.
        exited.then((code) => {
          if (!waiters.includes(waiter)) return
          waiters.splice(waiters.indexOf(waiter), 1)
          clearTimeout(timer)
          const m = inbox.findIndex(match)
          if (m >= 0) resolve(inbox.splice(m, 1)[0])
          else reject(new Error(`${name} exited with ${code} before sending the expected message\n${child.tail()}`))
        })
      })
    },
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode
      proc.kill(signal)
      const code = await within(exited, graceMs)
      if (code === null) {
        proc.kill('SIGKILL')
        return exited
      }
      return code
    },
  }
  return child
}

/** Load processes send {type:'error'} before dying; this turns it into a thrown error. */
export function isReply(type: string) {
  return (m: any) => m?.type === type || m?.type === 'error'
}

export async function expectReply<T = any>(child: Child, type: string, timeoutMs?: number): Promise<T> {
  const m = await child.next(isReply(type), timeoutMs)
  if (m.type === 'error') throw new Error(`${child.name}: ${m.message}`)
  return m as T
}

export function killAllNow() {
  for (const p of alive) {
    try {
      p.kill('SIGKILL')
    } catch {
      // already gone
    }
  }
  alive.clear()
}

export async function stopAll() {
  await Promise.all(
    [...alive].map(async (p) => {
      p.kill('SIGTERM')
      const done = await within(
        p.exited.then(() => true),
        5000,
      )
      if (!done) p.kill('SIGKILL')
    }),
  )
  alive.clear()
}

/**
 * The promise's value, or null after ms. The timer is cleared either way: a
 * pending Bun.sleep would keep the bench alive for the rest of it after its
 * work is done.
 */
function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: Timer | undefined
  return Promise.race([p, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)))]).finally(() => clearTimeout(timer))
}

process.on('exit', killAllNow)
