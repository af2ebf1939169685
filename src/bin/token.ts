/** `bun run token create --name NAME [--admin] | list | revoke NAME`: the same as `taskline token`. */
import { runTokenCli } from '../commands/token'

process.exit(await runTokenCli(process.argv.slice(2)))
