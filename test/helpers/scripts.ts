import type { Subprocess } from 'bun'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { configSchema } from '../../src/config'
import { collect } from './pipes'

/**
 * `bun run <script>` as a user starts it, from the repo root, configured only
 * through the environment. Each child carries a marker variable, so a test can
 * find every process it started, grandchildren included (bun run → bun → roles).
 */
const root = join(import.meta.dir, '../..')

export interface ScriptProcess {
  proc: Subprocess<'ignore', 'pipe', 'pipe'>
  stdout(): string
  stderr(): string
  /** Both pipes read to the end. */
  finished: Promise<unknown>
  /** Pids of live processes that carry this child's marker. */
  alive(): number[]
  /** SIGKILLs every process with the marker. */
  killTree(): void
}

export function runScript(script: string, env: Record<string, string>): ScriptProcess {
  const marker = `TASKLINE_TEST_MARK=${crypto.randomUUID()}`
  const [markName, markValue] = marker.split('=') as [string, string]
  const proc = Bun.spawn(['bun', 'run', script], {
    cwd: root,
    env: { ...callerEnv(), ...env, [markName]: markValue },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const out = collect(proc.stdout)
  const err = collect(proc.stderr)
  const alive = () => marked(marker)
  return {
    proc,
    stdout: out.text,
    stderr: err.text,
    finished: Promise.all([out.done, err.done]),
    alive,
    killTree() {
      for (const pid of alive()) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // gone already
        }
      }
    },
  }
}

/** The caller's environment minus every Taskline variable: a stray setting in the test's shell must not change what is tested. */
function callerEnv(): Record<string, string> {
  const base: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !(k in configSchema.shape)) base[k] = v
  return base
}

function marked(marker: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(marker)) pids.push(Number(entry))
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  return pids
}
