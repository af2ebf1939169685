/**
 * `taskline`: every role and tool in one executable. `bun run build` compiles
 * this file with `bun build --compile` to dist/taskline, which carries the Bun
 * runtime, the code, the dashboard (an HTML import in src/api/server.ts), the
 * migrations (src/infra/migrations.macro.ts) and the version; it needs nothing
 * beside it but glibc. `bun src/main.ts …` runs the same thing from source.
 *
 * Roles and tools are imported when chosen, so `taskline list` does not load
 * the server, and `taskline api` does not load the CLI.
 */
import pkg from '../package.json' with { type: 'json' }
import { commands as clientCommands, type CommandName } from './cli/args'
import { configSchema, ConfigError, loadConfig, type Config } from './config'
import { runMain } from './main-runner'

interface ServerCommand {
  args?: string
  about: string
  /** An exit code, or undefined for a role that keeps running until a signal stops it. */
  run(args: string[]): Promise<number | undefined>
}

/** A role that runs until signalled (api, worker, all); runMain reads the config and turns SIGTERM into close(). */
function role(name: string, start: (config: Config) => Promise<{ close(): Promise<void> }>): ServerCommand['run'] {
  return async (args) => {
    if (args.length > 0) return noArguments(name, args)
    await runMain(name, start)
    return undefined
  }
}

function noArguments(name: string, args: string[]): number {
  if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
    console.log(`Usage: taskline ${name}\n\n${serverCommands[name]!.about}\nSettings come from environment variables (see the README's Configuration).`)
    return 0
  }
  console.error(`taskline ${name}: takes no arguments (settings are environment variables); got "${args.join(' ')}"`)
  return 2
}

export const serverCommands: Record<string, ServerCommand> = {
  api: {
    about: 'run the HTTP and WebSocket API (and the dashboard at /) on HOST:PORT',
    run: role('api', async (config) => (await import('./api/server')).startApiServer(config)),
  },
  worker: {
    about: 'run a worker: take queued tasks and run their handlers',
    run: role('worker', async (config) => (await import('./worker/worker')).startWorker(config)),
  },
  migrate: {
    about: 'apply the database migrations built into this binary to DATABASE_URL',
    async run(args) {
      if (args.length > 0) return noArguments('migrate', args)
      return (await import('./migrate-cli')).runMigrateCli()
    },
  },
  all: {
    about: 'migrate, then run the api and a worker in this one process (a single-container deploy)',
    run: role('all', startAll),
  },
  token: {
    args: 'create --name NAME [--admin] | list | revoke NAME',
    about: 'manage API tokens in DATABASE_URL; create prints the token once',
    run: async (args) => (await import('./tokens-cli')).runTokenCli(args, 'taskline token'),
  },
  healthcheck: {
    about: 'exit 0 if the api on this host answers /readyz on $PORT (container healthchecks)',
    async run(args) {
      if (args.length > 0) return noArguments('healthcheck', args)
      return healthcheck()
    },
  },
}

/**
 * Migrations, then both roles on one Config. Each role keeps its own pools and
 * log scope (role: api / worker), exactly as if they were two processes; one
 * SIGTERM (through runMain) closes both.
 */
async function startAll(config: Config): Promise<{ close(): Promise<void> }> {
  const [{ createLogger }, { createDb }, migrator, { startApiServer }, { startWorker }] = await Promise.all([
    import('./infra/logger'),
    import('./infra/db'),
    import('./infra/migrator'),
    import('./api/server'),
    import('./worker/worker'),
  ])
  const logger = createLogger(config.LOG_LEVEL, { role: 'migrate' })
  const db = createDb(config.DATABASE_URL, 1)
  try {
    const applied = await migrator.migrate(db, migrator.embeddedMigrations)
    logger.info(applied.length ? 'migrations applied' : 'database is up to date', { applied })
  } finally {
    await db.destroy()
  }
  const api = await startApiServer(config)
  let worker: Awaited<ReturnType<typeof startWorker>>
  try {
    worker = await startWorker(config)
  } catch (e) {
    // runMain exits on a failed start; the api's connections go first, not leaked.
    await api.close().catch(() => {})
    throw e
  }
  return {
    async close() {
      // Side by side: the worker's grace period need not wait for the api's sockets, nor the reverse.
      const results = await Promise.allSettled([api.close(), worker.close()])
      const failed = results.find((r) => r.status === 'rejected')
      if (failed) throw failed.reason
    },
  }
}

async function healthcheck(): Promise<number> {
  let settings: { HOST: string; PORT: number }
  try {
    settings = loadConfig(process.env, configSchema.pick({ HOST: true, PORT: true }))
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e
    console.error(`taskline healthcheck: ${e.message}`)
    return 2
  }
  const { HOST: host, PORT: port } = settings
  if (port === 0) {
    console.error('taskline healthcheck: PORT=0 lets the api pick a port; set the real one')
    return 2
  }
  // A wildcard bind is reached on loopback; 127.0.0.1, not localhost, which may resolve to ::1.
  const target = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host
  const url = `http://${target}:${port}/readyz`
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) })
    if (res.ok) return 0
    console.error(`taskline healthcheck: ${url} answered ${res.status}: ${(await res.text()).slice(0, 200)}`)
  } catch (e) {
    console.error(`taskline healthcheck: ${url}: ${e instanceof Error ? e.message : String(e)}`)
  }
  return 1
}

const isClientCommand = (s: string): s is CommandName => Object.hasOwn(clientCommands, s)

function help(): string {
  const width = Math.max(...Object.keys(serverCommands).map((n) => n.length)) + 2
  const server = Object.entries(serverCommands).map(([name, c]) =>
    c.args ? `  ${name} ${c.args}\n  ${' '.repeat(width)}${c.about}` : `  ${name.padEnd(width)}${c.about}`)
  const client = Object.entries(clientCommands).map(([name, c]) => `  ${name.padEnd(width)}${c.about}`)
  return `taskline ${pkg.version}

Usage: taskline COMMAND [options]

Run Taskline (settings come from environment variables: DATABASE_URL, REDIS_URL, PORT, ...):
${server.join('\n')}

Talk to a running API (--url URL or $TASKLINE_URL, --token TOKEN or $TASKLINE_TOKEN):
${client.join('\n')}

taskline COMMAND --help shows one command's options.
`
}

/** The exit code, or undefined while a role runs (it exits on its own when signalled). */
export async function main(argv: string[]): Promise<number | undefined> {
  const [first, ...rest] = argv
  if (first === undefined) {
    process.stderr.write(help())
    return 2
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(help())
    return 0
  }
  if (first === '--version' || first === '-V') {
    console.log(`taskline ${pkg.version}`)
    return 0
  }
  const server = Object.hasOwn(serverCommands, first) ? serverCommands[first] : undefined
  if (server) return server.run(rest)
  // A leading option (`taskline --url X list`) belongs to the client, which parses its own line.
  if (!isClientCommand(first) && !first.startsWith('-')) {
    process.stderr.write(`taskline: unknown command "${first}"\n\n${help()}`)
    return 2
  }
  const { runCli } = await import('./cli/main')
  const controller = new AbortController()
  // As in src/cli/main.ts: the first Ctrl-C ends a watch tidily, a second one kills.
  process.once('SIGINT', () => controller.abort())
  return runCli(argv, { signal: controller.signal })
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2))
  if (code !== undefined) process.exit(code)
}
