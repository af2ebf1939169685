/**
 * Builds what the package ships besides its source (Bun runs the source):
 *
 *   OUT/client.js           taskline/client for Node and browsers: one ES module with no imports
 *   OUT/client.d.ts         its types, re-exporting OUT/client-types/*.d.ts
 *   OUT/index.d.ts          the handler kit's types (`taskline`), re-exporting OUT/handler-types/*.d.ts,
 *                           so a project on moduleResolution nodenext type-checks its handlers too
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

/** The handler kit's declarations: handler.ts imports only zod's types, a dependency of the package. */
async function buildHandlerTypes() {
  const dir = join(out, 'handler-types')
  const flags = ['--ignoreConfig', '--declaration', '--emitDeclarationOnly', '--strict', '--skipLibCheck', '--target', 'ES2022', '--module', 'ESNext']
  const tsc = Bun.spawnSync(
    [
      'bunx',
      'tsc',
      join(root, 'src/handlers/handler.ts'),
      ...flags,
      '--moduleResolution',
      'bundler',
      '--lib',
      'ES2022,DOM',
      '--types',
      'node',
      '--outDir',
      dir,
    ],
    {
      cwd: root,
    },
  )
  if (tsc.exitCode !== 0) throw new Error(`tsc failed:\n${tsc.stdout}${tsc.stderr}`)
  const text = await Bun.file(join(dir, 'handler.d.ts')).text()
  const outside = specifiers(text).filter((s) => s !== 'zod')
  if (outside.length) throw new Error(`handler.d.ts refers to ${outside.join(', ')}; the handler kit's types must need only zod`)
  await Bun.write(join(out, 'index.d.ts'), "export * from './handler-types/handler.js'\n")
}

await rm(typesDir, { recursive: true, force: true })
await buildJs()
await buildTypes()
await buildHandlerTypes()
console.log(`built ${join(out, 'client.js')}, ${join(out, 'client.d.ts')} and ${join(out, 'index.d.ts')}`)
