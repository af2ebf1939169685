#!/usr/bin/env bun
/**
 * `taskline`: every role and tool in one executable (the table is in
 * src/commands/index.ts). `bun run build` compiles this file to dist/taskline;
 * `bun src/bin/taskline.ts …` runs the same thing from source.
 */
import { main } from '../commands'
import { exitWith } from '../commands/runner'

await exitWith(main(process.argv.slice(2)))
