/**
 * Builds taskline/client for Node and browsers (Bun runs the source):
 *
 *   OUT/client.js           one ES module with no imports (fetch, URL and WebSocket are the runtime's)
 *   OUT/client.d.ts         its types, re-exporting OUT/client-types/*.d.ts
 *
 * `bun scripts/client/build.ts [OUT]`, OUT default dist. It fails if either
 * output imports anything: the client must stand alone.
 */
import { readdir, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dir, '../..')
const out = resolve(process.argv[2] ?? join(root, 'dist'))
const typesDir = join(out, 'client-types')

/** The specifiers of a module's import and export statements, and of its import() types. */
const specifiers = (code: string): string[] => [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s*)(['"])([^'"]+)\1/gm)].map((m) => m[2]!)

async function buildJs() {
  const built = await Bun.build({
    entrypoints: [join(root, 'src/client/index.ts')],
    outdir: out,
    naming: 'client.js',
    // The browser target adds no Node or Bun imports, so the one file runs in Node too.
    target: 'browser',
    format: 'esm',
  })
  if (!built.success) throw new AggregateError(built.logs, 'bun build failed')
  const code = await Bun.file(join(out, 'client.js')).text()
  const imports = specifiers(code)
  if (imports.length) throw new Error(`client.js imports ${imports.join(', ')}; the client must need nothing at run time`)
}

/**
 * tsc writes one .d.ts per source file with the source's extensionless
 * specifiers; Node's resolution (moduleResolution node16 and nodenext)
 * wants the .js a file would have, so each gets one.
 */
async function buildTypes() {
  const tsc = Bun.spawnSync(['bunx', 'tsc', '-p', join(import.meta.dir, 'tsconfig.json'), '--outDir', typesDir], { cwd: root })
  if (tsc.exitCode !== 0) throw new Error(`tsc failed:\n${tsc.stdout}${tsc.stderr}`)
  for (const name of await readdir(typesDir)) {
    const file = Bun.file(join(typesDir, name))
    const text = (await file.text()).replace(
      /((?:\bfrom\s*|\bimport\s*\(\s*)(['"]))(\.\/[\w.-]+?)(\2)/g,
      (_, before, _q, path, after) => `${before}${path.endsWith('.js') ? path : `${path}.js`}${after}`,
    )
    const outside = specifiers(text).filter((s) => !/^\.\/[\w.-]+\.js$/.test(s))
    if (outside.length) throw new Error(`${name} refers to ${outside.join(', ')}; the client's types must stand alone`)
    await Bun.write(file, text)
  }
  await Bun.write(join(out, 'client.d.ts'), "export * from './client-types/index.js'\n")
}

await rm(typesDir, { recursive: true, force: true })
await buildJs()
await buildTypes()
console.log(`built ${join(out, 'client.js')} and ${join(out, 'client.d.ts')}`)
