/**
 * Every command of `taskline`, the one executable (src/bin/taskline.ts, which
 * `bun run build` compiles to dist/taskline with the Bun runtime, the code, the
 * dashboard, the migrations and the version; it needs nothing beside it but
 * glibc). The other entry points in src/bin/ run one of these commands each.
 *
 * Roles and tools are imported when chosen, so `taskline list` does not load
 * the server, and `taskline api` does not load the CLI.
 */
import pkg from '../../package.json' with { type: 'json' }
import { commands as clientCommands, type CommandName } from '../cli/args'
import type { Config } from '../config'
import { runClientCli, runRole } from './runner'

interface ServerCommand {
  args?: string
  about: string
  /** An exit code, or undefined for a role that keeps running until a signal stops it. */
  run(args: string[]): Promise<number | undefined>
}

/**
 * A role that runs until signalled (api, worker, all); runRole reads the
 * config and turns SIGTERM into close(). A role that runs handlers takes
 * `--handlers FILE` (repeated, or comma-separated), which replaces $HANDLERS.
 */
function role(name: string, start: (config: Config) => Promise<{ close(): Promise<void> }>, o: { handlers?: boolean } = {}): ServerCommand['run'] {
  return async (args) => {
    const files = o.handlers ? handlerFiles(args) : args.length ? null : []
    if (files === null) return noArguments(name, args)
    await runRole(name, (config) => start(files.length ? { ...config, HANDLERS: files } : config))
    return undefined
  }
}

/** The files --handlers names, or null when the arguments hold anything else. */
function handlerFiles(args: string[]): string[] | null {
  const files: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    const value = arg === '--handlers' ? args[++i] : arg.startsWith('--handlers=') ? arg.slice('--handlers='.length) : undefined
    if (!value) return null
    files.push(
      ...value
        .split(',')
        .map((f) => f.trim())
        .filter(Boolean),
    )
  }
  return files
}

function noArguments(name: string, args: string[]): number {
  if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
    console.log(
      `Usage: taskline ${name}${serverCommands[name]!.args ? ` ${serverCommands[name]!.args}` : ''}\n\n${serverCommands[name]!.about}\nSettings come from environment variables (see docs/configuration.md).`,
    )
    return 0
  }
  const takes = serverCommands[name]!.args ? `takes only ${serverCommands[name]!.args}` : 'takes no arguments'
  console.error(`taskline ${name}: ${takes} (settings are environment variables); got "${args.join(' ')}"`)
  return 2
}

export const serverCommands: Record<string, ServerCommand> = {
  api: {
    about: 'run the HTTP and WebSocket API (and the dashboard at /) on HOST:PORT',
    run: role('api', async (config) => (await import('../api/server')).startApiServer(config)),
  },
  worker: {
    args: '[--handlers FILE]...',
    about: 'run a worker: take queued tasks and run the built-in handlers and those in each FILE (or $HANDLERS)',
    run: role('worker', async (config) => (await import('../worker/worker')).startWorker(config), { handlers: true }),
  },
  migrate: {
    about: 'apply the database migrations built into this binary to DATABASE_URL',
    async run(args) {
      if (args.length > 0) return noArguments('migrate', args)
      return (await import('./migrate')).runMigrateCli()
    },
  },
  all: {
    args: '[--handlers FILE]...',
    about: 'migrate, then run the api and a worker in this one process (a single-container deploy)',
    run: role('all', async (config) => (await import('./all')).startAll(config), { handlers: true }),
  },
  token: {
    args: 'create --name NAME [--admin] | list | revoke NAME',
    about: 'manage API tokens in DATABASE_URL; create prints the token once',
    run: async (args) => (await import('./token')).runTokenCli(args, 'taskline token'),
  },
  healthcheck: {
    about: 'exit 0 if the api on this host answers /readyz on $PORT (container healthchecks)',
    async run(args) {
      if (args.length > 0) return noArguments('healthcheck', args)
      return (await import('./healthcheck')).healthcheck()
    },
  },
}

const isClientCommand = (s: string): s is CommandName => Object.hasOwn(clientCommands, s)

function help(): string {
  const width = Math.max(...Object.keys(serverCommands).map((n) => n.length)) + 2
  const server = Object.entries(serverCommands).map(([name, c]) =>
    c.args ? `  ${name} ${c.args}\n  ${' '.repeat(width)}${c.about}` : `  ${name.padEnd(width)}${c.about}`,
  )
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
  return runClientCli(argv)
}
