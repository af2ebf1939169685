import type { HTMLBundle } from 'bun'
import { basename } from 'node:path'

/** One file of the built dashboard, under the URL path the page asks for it by. */
export interface DashboardFile {
  /** "/" for the page; "/chunk-<hash>.js" and the like for what it loads. */
  path: string
  contentType: string
  body: string
}

type BuiltFiles = NonNullable<HTMLBundle['files']>

const loaded = new Map<string, Promise<DashboardFile[]>>()

/**
 * The dashboard as production files, however this process was started. A
 * compiled binary carries the bundle `bun build` made of the HTML import; from
 * source the import is only the page's path, so it is bundled here once per
 * process. Either way Bun's development server never sees the page: it would
 * add its hot-reload client and serve source maps naming this machine's paths.
 */
export function loadDashboard(bundle: HTMLBundle): Promise<DashboardFile[]> {
  let files = loaded.get(bundle.index)
  if (!files) {
    files = bundle.files ? readEmbedded(bundle.files) : buildFromSource(bundle.index)
    loaded.set(bundle.index, files)
  }
  return files
}

function readEmbedded(files: BuiltFiles): Promise<DashboardFile[]> {
  const served = files.filter((f) => !f.path.endsWith('.map'))
  return Promise.all(
    served.map(async (f) => ({
      path: f.loader === 'html' ? '/' : `/${basename(f.path)}`,
      contentType: f.headers['content-type'],
      body: await Bun.file(f.path).text(),
    })),
  )
}

async function buildFromSource(index: string): Promise<DashboardFile[]> {
  // publicPath '/' makes the page's references absolute, as the compiled bundle's are.
  const result = await Bun.build({ entrypoints: [index], minify: true, sourcemap: 'none', publicPath: '/' })
  return Promise.all(
    result.outputs.map(async (o) => ({
      path: o.path.endsWith('.html') ? '/' : `/${basename(o.path)}`,
      contentType: o.type,
      body: await o.text(),
    })),
  )
}
