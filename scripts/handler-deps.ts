/**
 * `bun scripts/handler-deps.ts DIR`: lays out DIR/node_modules with what a
 * handler module imports, `taskline` (the handler kit only: index.ts and the
 * one file it exports from) and `zod`, so a handler file under DIR (the
 * image's /handlers, beside /node_modules) loads in the compiled binary with
 * no install of its own. The Dockerfile runs it; a test runs the binary on
 * its output.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const out = process.argv[2]
if (!out) {
  console.error('usage: bun scripts/handler-deps.ts DIR')
  process.exit(2)
}
const root = join(import.meta.dir, '..')
const pkg = (await Bun.file(join(root, 'package.json')).json()) as { version: string; dependencies: Record<string, string> }
const taskline = join(out, 'node_modules/taskline')
mkdirSync(join(taskline, 'src/handlers'), { recursive: true })
writeFileSync(
  join(taskline, 'package.json'),
  `${JSON.stringify({ name: 'taskline', version: pkg.version, type: 'module', exports: { '.': './index.ts' } }, null, 2)}\n`,
)
cpSync(join(root, 'index.ts'), join(taskline, 'index.ts'))
cpSync(join(root, 'src/handlers/handler.ts'), join(taskline, 'src/handlers/handler.ts'))
cpSync(join(root, 'node_modules/zod'), join(out, 'node_modules/zod'), { recursive: true, dereference: true })
console.log(`wrote ${join(out, 'node_modules')} (taskline ${pkg.version}, zod ${pkg.dependencies.zod})`)
