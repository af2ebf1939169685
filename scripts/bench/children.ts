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

export function spawnChild(name: string, cmd: string[], env: Record<string, string | number | undefined> = {}): Child {
  const inbox: any[] = []
  const waiters: { match: (m: any) => boolean; resolve: (m: any) => void }[] = []
  let stderr = ''
  const proc = Bun.spawn(cmd, {
    cwd: repoRoot,
    env: {
      ...process.env,
      ...Object.fromEntries(
        Object.entries(env)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => [k, String(v)]),
      ),
    },
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
      const code = await Promise.race([exited, Bun.sleep(graceMs).then(() => null)])
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
      const done = await Promise.race([p.exited.then(() => true), Bun.sleep(5000).then(() => false)])
      if (!done) p.kill('SIGKILL')
    }),
  )
  alive.clear()
}

process.on('exit', killAllNow)
