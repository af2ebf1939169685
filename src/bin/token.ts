/** `bun run token create --name NAME [--admin] | list | revoke NAME`; the logic is in src/tokens-cli.ts, shared with `taskline token`. */
import { runTokenCli } from '../src/tokens-cli'

process.exit(await runTokenCli(process.argv.slice(2)))
