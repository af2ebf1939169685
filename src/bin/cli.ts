/** `bun run cli`: the API client alone, as `taskline list|show|watch|…` runs it. */
import { exitWith, runClientCli } from '../commands/runner'

await exitWith(runClientCli(process.argv.slice(2)))
