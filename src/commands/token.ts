/**
 * Manages API tokens in the database at DATABASE_URL:
 *   create --name NAME [--admin] [--rate N]   prints the new token once; --rate
 *                                  sets its own requests per second (0: none)
 *   list
 *   revoke NAME                    refused everywhere within seconds
 * Run as `bun run token …` (src/bin/token.ts) or `taskline token …`;
 * it returns the exit code instead of exiting, so both can call it.
 */
import { parseArgs } from 'node:util'
import { configSchema, ConfigError, loadConfig } from '../config'
import { DomainError } from '../domain/errors'
import { tokenNameSchema } from '../domain/tokens/token'
import { listTokens, revokeTokenByName } from '../domain/tokens/token.repository'
import { createToken } from '../domain/tokens/token.service'
import { createDb } from '../infra/db'

/** program: how the caller was invoked, for the usage line ('bun run token', 'taskline token'). */
export async function runTokenCli(argv: string[], program = 'bun run token'): Promise<number> {
  try {
    return await main(argv, `usage: ${program} create --name NAME [--admin] [--rate N] | list | revoke NAME`)
  } catch (e) {
    // A malformed command line (an unknown option, a value missing) is a usage error, like a bad value.
    if (String((e as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')) {
      console.error(`token: ${(e as Error).message.split('\n')[0]}`)
      return 2
    }
    const known = e instanceof DomainError || e instanceof ConfigError
    console.error(`token: ${known ? (e as Error).message : `failed: ${(e as Error).message}`}`)
    return known && e instanceof ConfigError ? 2 : 1
  }
}

async function main(argv: string[], usage: string): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { name: { type: 'string' }, admin: { type: 'boolean', default: false }, rate: { type: 'string' }, help: { type: 'boolean' } },
  })
  const [command, arg] = positionals
  if (values.help || !command) {
    console.log(usage)
    return values.help ? 0 : 2
  }
  const name = command === 'revoke' ? arg : values.name
  if (command !== 'list') {
    const checked = tokenNameSchema.safeParse(name)
    if (!checked.success) {
      console.error(`token: ${name === undefined ? 'a name is required' : checked.error.issues[0]!.message}\n${usage}`)
      return 2
    }
  }
  const rate = values.rate === undefined ? null : /^(0|[1-9][0-9]{0,8})$/.test(values.rate) ? Number(values.rate) : undefined
  if (rate === undefined) {
    console.error(`token: --rate must be a whole number of requests per second (0: no limit)\n${usage}`)
    return 2
  }
  const db = createDb(loadConfig(process.env, configSchema.pick({ DATABASE_URL: true })).DATABASE_URL, 1)
  try {
    if (command === 'create') {
      const t = await createToken(db, name!, values.admin, rate)
      console.log(t.token)
      console.error(`created ${t.admin ? 'admin ' : ''}token "${t.name}" (id ${t.id}, ${rateText(t.rate_limit_per_sec)}); it is shown only this once`)
      return 0
    }
    if (command === 'list') {
      for (const t of await listTokens(db)) {
        console.log(
          [
            t.id,
            t.name,
            t.admin ? 'admin' : 'owner',
            rateText(t.rate_limit_per_sec),
            t.created_at.toISOString(),
            t.revoked_at ? `revoked ${t.revoked_at.toISOString()}` : 'active',
          ].join('\t'),
        )
      }
      return 0
    }
    if (command === 'revoke') {
      if (await revokeTokenByName(db, name!)) {
        console.log(`revoked "${name}"`)
        return 0
      }
      console.error(`token: no active token named "${name}"`)
      return 1
    }
    console.error(`token: unknown command "${command}"\n${usage}`)
    return 2
  } finally {
    await db.destroy()
  }
}

const rateText = (rate: number | null) => (rate === null ? 'default rate' : rate === 0 ? 'no rate limit' : `${rate} requests/s`)
