/** `bun run worker`: the same as `taskline worker`. */
import { main } from '../commands'
import { exitWith } from '../commands/runner'

await exitWith(main(['worker', ...process.argv.slice(2)]))
