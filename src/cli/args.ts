/** Command-line parsing and the usage text: everything a usage error (exit 2) can come from. */
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { parseDuration } from '../infra/duration'
import { maxSeq } from '../domain/tasks/task-status'
import { taskStatuses } from './schemas'

export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: CommandName,
  ) {
    super(message)
    this.name = 'UsageError'
  }
}

const globalOptions = ['url', 'token', 'help', 'version'] as const

/** One parseArgs config for every command, so values are typed; which command takes which option is checked after. */
const options = {
  url: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  json: { type: 'boolean' },
  type: { type: 'string' },
  payload: { type: 'string' },
  'max-attempts': { type: 'string' },
  delay: { type: 'string' },
  at: { type: 'string' },
  queue: { type: 'string' },
  priority: { type: 'string' },
  'depends-on': { type: 'string' },
  watch: { type: 'boolean', short: 'w' },
  status: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  'after-seq': { type: 'string' },
  timezone: { type: 'string' },
} as const
type OptionName = keyof typeof options

export const commands = {
  create: {
    args: '"title"',
    options: ['type', 'payload', 'max-attempts', 'delay', 'at', 'queue', 'priority', 'depends-on', 'watch', 'json'],
    about: 'create a task (--delay 10m or --at ISO-TIME to run it later; --queue, --priority -10..10, --depends-on ID,ID); --watch follows it until it ends',
  },
  list: { args: '', options: ['status', 'queue', 'limit', 'cursor', 'json'], about: 'list tasks, newest first (--status, --queue narrow it)' },
  show: { args: 'ID', options: ['json'], about: 'show one task' },
  watch: { args: 'ID', options: [], about: 'follow a task until it ends (exit 0 COMPLETED, 1 FAILED or CANCELLED)' },
  cancel: { args: 'ID', options: ['json'], about: 'cancel a PENDING or PROCESSING task' },
  retry: { args: 'ID', options: ['json'], about: 'run a FAILED or CANCELLED task again, with fresh attempts' },
  events: {
    args: 'ID',
    options: ['after-seq', 'limit', 'json'],
    about: "list a task's changes, oldest first: all of them, or --limit N (up to 1000) after --after-seq",
  },
  schedules: {
    args: '[list | create NAME CRON "title" | pause|resume|delete ID]',
    options: ['timezone', 'type', 'payload', 'max-attempts', 'queue', 'priority', 'json'],
    about: 'list cron schedules with their next run (the default), or create (--timezone, --type, --payload), pause, resume or delete one',
    maxArgs: 4,
  },
  queues: {
    args: '[list | pause|resume NAME]',
    options: ['json'],
    about: 'list queues with their ready, waiting and running tasks (the default), or pause or resume one (admin)',
    maxArgs: 2,
  },
} as const satisfies Record<string, { args: string; options: OptionName[]; about: string; maxArgs?: number }>
export type CommandName = keyof typeof commands

const optionArgs: Partial<Record<OptionName, string>> = {
  type: 'T',
  payload: 'JSON',
  'max-attempts': 'N',
  delay: 'DURATION',
  at: 'TIME',
  queue: 'NAME',
  priority: 'N',
  'depends-on': 'IDS',
  status: 'S',
  limit: 'N',
  cursor: 'C',
  'after-seq': 'SEQ',
  timezone: 'TZ',
}

const synopsis = (name: CommandName) => {
  const c = commands[name]
  const opts = c.options.map((o: OptionName) => `[--${o}${optionArgs[o] ? ` ${optionArgs[o]}` : ''}]`)
  return [name, c.args, ...opts].filter(Boolean).join(' ')
}

const jsonLine = "  --json          print the API's JSON instead of text\n"

/** The options block; --json only where the command takes it (watch does not). */
const optionsHelp = (withJson: boolean) => `Options:
  --url URL       API base URL (default: $TASKLINE_URL, else http://localhost:8000)
  --token TOKEN   API token (default: $TASKLINE_TOKEN)
${withJson ? jsonLine : ''}  -h, --help      show help (taskline COMMAND --help for one command)
  -V, --version   print the version

Exit codes: 0 success (watch: COMPLETED), 1 API error or task FAILED/CANCELLED, 2 usage error`

export function usage(command?: CommandName): string {
  if (command) {
    const withJson = (commands[command].options as readonly OptionName[]).includes('json')
    return `Usage: taskline ${synopsis(command)}\n\n${commands[command].about}\n\n${optionsHelp(withJson)}\n`
  }
  // Synopsis and description on two lines: side by side they pass 120 columns.
  const lines = (Object.keys(commands) as CommandName[]).map((n) => `  ${synopsis(n)}\n      ${commands[n].about}`)
  return `Usage: taskline COMMAND [options]\n\nCommands:\n${lines.join('\n')}\n\n${optionsHelp(true)}\n`
}

export type ParsedArgs =
  | { kind: 'help'; command?: CommandName }
  | { kind: 'version' }
  | { kind: 'command'; command: CommandName; positionals: string[]; values: Values }
type Values = ReturnType<typeof parse>['values']

const isCommand = (s: string | undefined): s is CommandName => s !== undefined && Object.hasOwn(commands, s)

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true, tokens: true })
  } catch (e) {
    // node's messages carry a paragraph of advice; the option name is what the user needs.
    const err = e as { code?: string; message: string }
    const name = /'(-[^' ]+)/.exec(err.message)?.[1]
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && name) throw new UsageError(`unknown option ${name}`, commandIn(argv))
    throw new UsageError(err.message.split('. ')[0] ?? err.message, commandIn(argv))
  }
}

/** The command word, for the usage text of a line that failed to parse. */
const commandIn = (argv: string[]) => argv.find(isCommand)

export function parseCommandLine(argv: string[]): ParsedArgs {
  const { values, positionals, tokens } = parse(argv)
  if (values.version) return { kind: 'version' }
  const [first, ...rest] = positionals
  if (first !== undefined && !isCommand(first)) throw new UsageError(`unknown command "${first}"`)
  if (values.help) return { kind: 'help', command: first }
  if (first === undefined) throw new UsageError('no command given')
  const allowed: readonly string[] = [...globalOptions, ...commands[first].options]
  for (const t of tokens) {
    if (t.kind === 'option' && !allowed.includes(t.name)) throw new UsageError(`${first} does not take ${t.rawName}`, first)
  }
  const c: { args: string; maxArgs?: number } = commands[first]
  // A command with maxArgs (schedules) checks its own arguments; the others take exactly their one or none.
  const expected = c.maxArgs !== undefined ? 0 : c.args ? 1 : 0
  const most = c.maxArgs ?? expected
  if (rest.length < expected) throw new UsageError(`${first} needs ${c.args}`, first)
  if (rest.length > most) throw new UsageError(`unexpected argument "${rest[most]}"`, first)
  return { kind: 'command', command: first, positionals: rest, values }
}

/** Parses one argument with a zod schema; its first issue becomes the usage error. */
export function check<S extends z.ZodType>(schema: S, value: unknown, command: CommandName): z.infer<S> {
  const r = schema.safeParse(value)
  if (r.success) return r.data
  throw new UsageError(r.error.issues[0]?.message ?? 'invalid argument', command)
}

export const idArg = z
  .string()
  .regex(/^[1-9][0-9]*$/, 'ID must be a positive integer')
  .transform(Number)
  .refine(Number.isSafeInteger, 'ID is too large')

const positiveInt = (name: string) =>
  z
    .string()
    .regex(/^[1-9][0-9]*$/, `${name} must be a positive integer`)
    .transform(Number)
    .refine(Number.isSafeInteger, `${name} is too large`)

export const maxAttemptsArg = positiveInt('--max-attempts')
/** --delay 10s, 5m, 2h, 1d or a number of ms: the API checks its range. */
export const delayArg = z.string().transform((s, ctx) => {
  const ms = parseDuration(s)
  if (ms === undefined || s.trim().toLowerCase() === 'off') ctx.addIssue({ code: 'custom', message: '--delay must be a duration like 30s, 10m, 2h or 1d' })
  return ms ?? 0
})
/** --priority 5 or -3: the API checks the range. */
export const priorityArg = z
  .string()
  .regex(/^-?[0-9]+$/, '--priority must be an integer, like 5 or --priority=-3')
  .transform(Number)
/** --depends-on 12,15: ids of tasks that must complete first. */
export const dependsOnArg = z
  .string()
  .regex(/^[1-9][0-9]*(,[1-9][0-9]*)*$/, '--depends-on must be task ids separated by commas, like 12,15')
  .transform((s) => s.split(',').map(Number))
export const cursorArg = positiveInt('--cursor')
export const limitArg = positiveInt('--limit').refine((n) => n <= 100, '--limit must be at most 100')
export const eventLimitArg = positiveInt('--limit').refine((n) => n <= 1000, '--limit must be at most 1000')
export const afterSeqArg = z
  .string()
  .regex(/^(0|[1-9][0-9]*)$/, '--after-seq must be a non-negative integer')
  .transform(Number)
  .refine((n) => n <= maxSeq, '--after-seq is too large')
export const statusArg = z
  .string()
  .transform((s) => s.toUpperCase())
  .pipe(z.enum(taskStatuses, { error: `--status must be one of ${taskStatuses.join(', ')}` }))

export const payloadArg = z
  .string()
  .transform((s, ctx) => {
    try {
      return JSON.parse(s) as unknown
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: `--payload is not valid JSON (${(e as Error).message})` })
      return z.NEVER
    }
  })
  .pipe(z.record(z.string(), z.unknown(), { error: '--payload must be a JSON object, e.g. \'{"steps": 3}\'' }))

export const urlArg = z.url({ protocol: /^https?$/ })

/** --queue and --priority, as create and schedules create take them. */
export function placement(values: { queue?: string; priority?: string }, command: CommandName): { queue?: string; priority?: number } {
  return { queue: values.queue, priority: values.priority === undefined ? undefined : check(priorityArg, values.priority, command) }
}
