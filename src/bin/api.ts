/** `bun run api`: the same as `taskline api`. */
import { main } from '../commands'
import { exitWith } from '../commands/runner'

await exitWith(main(['api', ...process.argv.slice(2)]))
