import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { Subprocess } from 'bun'
import { createDb } from '../../src/infra/db'
import { migrate, readMigrations } from '../../src/infra/migrator'

/**
 * Servers a chaos test may kill, wipe and restart at will: never the shared
 * Postgres on 5432 or Redis on 6379, which other tests and people rely on.
 * Everything started here is also killed when the test process exits, so a
 * crashed or timed-out run leaves nothing behind.
 */

const hasServerBinaries = (dir: string) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))

function pgConfigBindir(): string | null {
  if (!Bun.which('pg_config')) return null
  const out = Bun.spawnSync(['pg_config', '--bindir'], { stdout: 'pipe', stderr: 'ignore' })
  return out.exitCode === 0 ? out.stdout.toString().trim() : null
}

/**
 * Where initdb and pg_ctl live, whatever Postgres version is installed:
 * pg_config's bindir if it holds them (Debian's pg_config comes with libpq,
 * whose version may not be the server's), else the highest version under
 * /usr/lib/postgresql, else initdb on the PATH.
 */
export function findPostgresBin(o: { root?: string; pgConfig?: () => string | null; path?: () => string | null } = {}): string {
  const fromConfig = (o.pgConfig ?? pgConfigBindir)()
  if (fromConfig && hasServerBinaries(fromConfig)) return fromConfig
  const root = o.root ?? '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v)) : []
  // Numeric, not lexical: 9.6 sorts below 16.
  versions.sort((a, b) => Number(b) - Number(a))
  const installed = versions.map((v) => join(root, v, 'bin')).find(hasServerBinaries)
  if (installed) return installed
  const onPath = (o.path ?? (() => Bun.which('initdb')))()
  if (onPath && hasServerBinaries(dirname(onPath))) return dirname(onPath)
  throw new Error(`no Postgres server binaries (initdb, pg_ctl) found: not in pg_config --bindir (${fromConfig ?? 'no pg_config'}), ${root}/*/bin or the PATH`)
}

// Last-resort cleanup: 'exit' handlers must be synchronous, so they only send signals.
export const exitKills = new Set<() => void>()
process.on('exit', () => {
  for (const kill of exitKills) kill()
})

/** A port nobody listens on right now (the OS picks it; we release it at once). */
export async function freePort(): Promise<number> {
  const listener = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const { port } = listener
  listener.stop(true)
  return port
}

/** Resolves once something accepts TCP connections on port. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      const socket = await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } })
      socket.end()
      return
    } catch {
      await Bun.sleep(25)
    }
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`)
}

export async function waitUntilClosed(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      const socket = await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } })
      socket.end()
      await Bun.sleep(25)
    } catch {
      return
    }
  }
  throw new Error(`127.0.0.1:${port} still accepts connections after ${timeoutMs} ms`)
}

export interface RedisServer {
  url: string
  port: number
  /** SIGKILLs the server: all data is gone (it never persists). Stays down until start(). */
  stop(): Promise<void>
  /** Starts a fresh, empty server on the same port. */
  start(): Promise<void>
  /** stop() then start(): Redis "restarted empty", as after a crash without persistence. */
  restartEmpty(): Promise<void>
  /** stop() and remove the temp dir. */
  destroy(): Promise<void>
}

/** A server of our own can also hang: stopped, its connections open, nothing answered. */
export interface OwnRedisServer extends RedisServer {
  /** SIGSTOPs the server, as a node that hangs. */
  freeze(): void
  /** SIGCONTs a frozen server. */
  thaw(): void
}

/** redis-server on 127.0.0.1:port, in the foreground, keeping nothing on disk but what dir is given for. */
export const redisServerCommand = (port: number, dir: string, ...extra: string[]) => [
  'redis-server',
  ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
  ...['--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'],
  ...extra,
]

/** A redis-server of our own on a random free port, without persistence. */
export async function startRedisServer(): Promise<OwnRedisServer> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'taskline-redis-'))
  let proc: Subprocess | null = null
  const kill = () => proc?.kill('SIGKILL')
  exitKills.add(kill)

  async function start() {
    if (proc && proc.exitCode === null) return
    proc = Bun.spawn(redisServerCommand(port, dir), { cwd: dir, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' })
    await waitForPort(port)
  }
  async function stop() {
    if (!proc) return
    const p = proc
    proc = null
    p.kill('SIGKILL')
    await p.exited
    await waitUntilClosed(port)
  }
  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    start,
    async restartEmpty() {
      await stop()
      await start()
    },
    freeze: () => void proc?.kill('SIGSTOP'),
    thaw: () => void proc?.kill('SIGCONT'),
    async destroy() {
      await stop()
      exitKills.delete(kill)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface PostgresCluster {
  url: string
  port: number
  /** Stops the server; 'immediate' is a crash (no checkpoint), 'fast' a clean shutdown. */
  stop(mode?: 'immediate' | 'fast'): Promise<void>
  start(): Promise<void>
  restart(mode?: 'immediate' | 'fast'): Promise<void>
  /** Stops the server and removes the data directory. */
  destroy(): Promise<void>
}

async function run(cmd: string[], what: string): Promise<void> {
  const proc = Bun.spawn(cmd, { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()])
  if (code !== 0) throw new Error(`${what} failed (exit ${code}): ${err || out}`)
}

/**
 * A throwaway Postgres cluster on a random free port, migrated. We run as
 * root and Postgres refuses root, so the cluster belongs to the postgres user.
 * fsync is off (only the server process dies in our tests, never the OS), but
 * synchronous_commit stays on: an immediate stop must not lose commits, or
 * tests would blame the product for data the harness threw away.
 */
export async function startPostgresCluster(opts: { migrate?: boolean } = {}): Promise<PostgresCluster> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'taskline-pg-'))
  const data = join(dir, 'data')
  const { uid, gid } = postgresUser()
  chownSync(dir, uid, gid)
  chmodSync(dir, 0o700)
  const asPostgres = (cmd: string[]) => ['runuser', '-u', 'postgres', '--', ...cmd]
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200`
  const pgBin = findPostgresBin()
  const pgCtl = (args: string[], what: string) => run(asPostgres([join(pgBin, 'pg_ctl'), '-D', data, ...args]), what)

  // The postmaster is not our child (pg_ctl daemonizes it); its pid file is the only handle on it.
  const kill = () => {
    try {
      const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
      if (pid > 0) process.kill(pid, 'SIGQUIT')
    } catch {}
  }
  exitKills.add(kill)

  await run(asPostgres([join(pgBin, 'initdb'), '-A', 'trust', '-U', 'postgres', '-D', data, '--no-sync', '--no-instructions']), 'initdb')
  const start = () => pgCtl(['-o', options, '-l', join(dir, 'server.log'), '-w', '-t', '30', 'start'], 'pg_ctl start')
  let running = false
  const cluster: PostgresCluster = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async start() {
      await start()
      running = true
    },
    async stop(mode = 'immediate') {
      if (!running) return
      await pgCtl(['-m', mode, '-w', '-t', '30', 'stop'], 'pg_ctl stop')
      running = false
    },
    async restart(mode = 'immediate') {
      await cluster.stop(mode)
      await cluster.start()
    },
    async destroy() {
      try {
        await cluster.stop('immediate')
      } finally {
        exitKills.delete(kill)
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
  try {
    await cluster.start()
    if (opts.migrate !== false) {
      const db = createDb(cluster.url, 1)
      try {
        await migrate(db, await readMigrations())
      } finally {
        await db.destroy()
      }
    }
  } catch (e) {
    await cluster.destroy().catch(() => {})
    throw e
  }
  return cluster
}

function postgresUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'))
  if (!line) throw new Error('no postgres user in /etc/passwd')
  const [, , uid, gid] = line.split(':')
  return { uid: Number(uid), gid: Number(gid) }
}
