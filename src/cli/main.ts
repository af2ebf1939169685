/**
 * `taskline` CLI: parses the command line, calls the API, prints the answer.
 * runCli returns the exit code instead of exiting, so the single binary that
 * also runs `taskline api|worker|migrate` can dispatch here (src/bin/cli.ts
 * runs it alone).
 */
import pkg from '../../package.json' with { type: 'json' }
import {
  afterSeqArg,
  check,
  cursorArg,
  eventLimitArg,
  idArg,
  limitArg,
  maxAttemptsArg,
  delayArg,
  dependsOnArg,
  parseCommandLine,
  placement,
  payloadArg,
  statusArg,
  urlArg,
  usage,
  UsageError,
  type ParsedArgs,
} from './args'
import { createClient, describeError, paramOfNext, type Client } from './client'
import { renderEventTable, renderKeyValue, renderTaskTable } from './format'
import { processIO, type CliIO } from './io'
import { runQueues } from './queues'
import { runSchedules } from './schedules'
import { EXIT_INTERRUPTED, watchTask } from './watch'

export const EXIT_OK = 0
export const EXIT_ERROR = 1
export const EXIT_USAGE = 2
const DEFAULT_URL = 'http://localhost:8000'

export interface RunOptions {
  io?: CliIO
  /** Aborted on Ctrl-C: a watch ends its line cleanly instead of dying mid-redraw. */
  signal?: AbortSignal
}

export async function runCli(argv: string[], opts: RunOptions = {}): Promise<number> {
  const io = opts.io ?? processIO()
  try {
    return await run(argv, io, opts.signal)
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}\n\n${usage(e.command)}`)
      return EXIT_USAGE
    }
    if (opts.signal?.aborted) return EXIT_INTERRUPTED
    for (const line of describeError(e)) io.err(`${line}\n`)
    return EXIT_ERROR
  } finally {
    await io.flush()
  }
}

async function run(argv: string[], io: CliIO, signal?: AbortSignal): Promise<number> {
  const args = parseCommandLine(argv)
  if (args.kind === 'version') {
    io.out(`taskline ${pkg.version}\n`)
    return EXIT_OK
  }
  if (args.kind === 'help') {
    io.out(usage(args.command))
    return EXIT_OK
  }
  const { command, values } = args
  const rawUrl = values.url ?? io.env.TASKLINE_URL ?? DEFAULT_URL
  if (!urlArg.safeParse(rawUrl).success) {
    throw new UsageError(`the API URL "${rawUrl}" (${values.url ? '--url' : 'TASKLINE_URL'}) must be an http:// or https:// URL`, command)
  }
  const url = rawUrl
  // An empty TASKLINE_TOKEN= means none, not an empty bearer token.
  const token = values.token || io.env.TASKLINE_TOKEN || undefined
  const client = createClient({ url, token, signal })
  return commandHandlers[command](args, { io, client, signal })
}

interface Ctx {
  io: CliIO
  client: Client
  signal?: AbortSignal
}
type Args = Extract<ParsedArgs, { kind: 'command' }>

/** --json prints the API's answer: indented for a person at a terminal, one line for a pipe (jq reads both). */
const printJson = (io: CliIO, value: unknown) => io.out(`${io.isTTY ? JSON.stringify(value, null, 2) : JSON.stringify(value)}\n`)

const commandHandlers: Record<Args['command'], (args: Args, ctx: Ctx) => Promise<number>> = {
  async create({ positionals, values }, { io, client, signal }) {
    const input = {
      // The API validates the title (and reports it as a field error); the CLI only checks what it must parse.
      title: positionals[0] ?? '',
      type: values.type,
      payload: values.payload === undefined ? undefined : check(payloadArg, values.payload, 'create'),
      max_attempts: values['max-attempts'] === undefined ? undefined : check(maxAttemptsArg, values['max-attempts'], 'create'),
      delay_ms: values.delay === undefined ? undefined : check(delayArg, values.delay, 'create'),
      // The API checks the time (and names run_at if it is not one).
      run_at: values.at,
      ...placement(values, 'create'),
      depends_on: values['depends-on'] === undefined ? undefined : check(dependsOnArg, values['depends-on'], 'create'),
    }
    const task = await client.createTask(input)
    if (!values.watch) {
      if (values.json) printJson(io, task)
      else io.out(`${renderKeyValue(task)}\n`)
      return EXIT_OK
    }
    if (values.json) printJson(io, task)
    else io.out(`created task ${task.id}: ${task.title}\n`)
    return watchTask({ client, io, task, signal })
  },

  async list({ values }, { io, client }) {
    const page = await client.listTasks({
      status: values.status === undefined ? undefined : check(statusArg, values.status, 'list'),
      // The API checks the name (and names queue if it is not one).
      queue: values.queue,
      limit: values.limit === undefined ? undefined : check(limitArg, values.limit, 'list'),
      cursor: values.cursor === undefined ? undefined : check(cursorArg, values.cursor, 'list'),
    })
    if (values.json) {
      printJson(io, page)
      return EXIT_OK
    }
    io.out(`${renderTaskTable(page.results)}\n`)
    const next = paramOfNext(page.next, 'cursor')
    // On stderr, so `taskline list | awk …` sees only the table.
    const narrowed = `${values.status ? ` --status ${values.status}` : ''}${values.queue ? ` --queue ${values.queue}` : ''}`
    if (next) io.err(`more: taskline list --cursor ${next}${narrowed}\n`)
    return EXIT_OK
  },

  async show({ positionals, values }, { io, client }) {
    const task = await client.getTask(check(idArg, positionals[0], 'show'))
    if (values.json) printJson(io, task)
    else io.out(`${renderKeyValue(task)}\n`)
    return EXIT_OK
  },

  async watch({ positionals }, { io, client, signal }) {
    // Read over HTTP first: a missing task, a bad token or a down API is a clear error, not a socket that never opens.
    const task = await client.getTask(check(idArg, positionals[0], 'watch'))
    return watchTask({ client, io, task, signal })
  },

  async cancel({ positionals, values }, { io, client }) {
    const task = await client.cancelTask(check(idArg, positionals[0], 'cancel'))
    if (values.json) printJson(io, task)
    else io.out(`task ${task.id} ${task.status}: ${task.title}\n`)
    return EXIT_OK
  },

  async retry({ positionals, values }, { io, client }) {
    const task = await client.retryTask(check(idArg, positionals[0], 'retry'))
    if (values.json) printJson(io, task)
    else io.out(`task ${task.id} ${task.status}: ${task.title}\n`)
    return EXIT_OK
  },

  async events({ positionals, values }, ctx) {
    const id = check(idArg, positionals[0], 'events')
    const afterSeq = values['after-seq'] === undefined ? 0 : check(afterSeqArg, values['after-seq'], 'events')
    if (values.limit !== undefined) return eventsPage(ctx, id, afterSeq, check(eventLimitArg, values.limit, 'events'), values.json)
    const results = []
    for await (const page of ctx.client.eventPages(id, afterSeq)) results.push(...page.results)
    if (values.json) printJson(ctx.io, { task_id: id, results, next: null })
    else ctx.io.out(`${renderEventTable(results)}\n`)
    return EXIT_OK
  },

  async schedules({ positionals, values }, { io, client }) {
    await runSchedules(positionals, values, io, client, (v) => printJson(io, v))
    return EXIT_OK
  },

  async queues({ positionals, values }, { io, client }) {
    await runQueues(positionals, values, io, client, (v) => printJson(io, v))
    return EXIT_OK
  },
}

/** `events --limit`: one page, as the API answers it, and how to ask for the next on stderr. */
async function eventsPage({ io, client }: Ctx, id: number, afterSeq: number, limit: number, json?: boolean): Promise<number> {
  const page = await client.listEvents(id, { afterSeq, limit })
  if (json) printJson(io, page)
  else io.out(`${renderEventTable(page.results)}\n`)
  const next = paramOfNext(page.next, 'after_seq')
  if (next) io.err(`more: taskline events ${id} --after-seq ${next} --limit ${limit}\n`)
  return EXIT_OK
}
