import { describe, expect, test } from 'bun:test'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { configSchema } from '../src/config'
import { serverCommands } from '../src/commands'

/**
 * There is no Docker engine in CI, so compose.yaml and the Dockerfile are checked
 * against the code instead: a renamed config variable, a moved file or a renamed
 * `taskline` subcommand must turn this red rather than surface on someone's first
 * `docker compose up`. test/binary.process.test.ts runs the binary itself.
 */
const root = join(import.meta.dir, '..')
const read = (file: string) => Bun.file(join(root, file)).text()

const compose = Bun.YAML.parse(await read('compose.yaml')) as any
const services: Record<string, any> = compose?.services ?? {}
const dockerfile = await read('Dockerfile')
const pkg = JSON.parse(await read('package.json')) as { scripts: Record<string, string> }

const appServices = ['migrate', 'api', 'worker'] as const
const fields = configSchema.shape as Record<string, (typeof configSchema.shape)[keyof typeof configSchema.shape]>

/** compose accepts environment as a map or as KEY=VALUE lines; values reach the process as strings. */
function environment(service: any): Record<string, string> {
  const env = service?.environment ?? {}
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((line: string) => {
        const i = line.indexOf('=')
        return i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 1)]
      }),
    )
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]))
}

/** command as a list, whichever of compose's two forms is used. */
const command = (service: any): string[] =>
  Array.isArray(service?.command)
    ? service.command.map(String)
    : String(service?.command ?? '')
        .split(/\s+/)
        .filter(Boolean)

const condition = (service: any, dep: string): string | undefined => service?.depends_on?.[dep]?.condition

/** Compose durations as used here ("20s", "1m30s", "500ms") in milliseconds. */
function durationMs(d: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const parts = [...String(d).matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)]
  if (parts.length === 0) throw new Error(`not a duration: ${d}`)
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * units[unit!]!, 0)
}

/** The published host:container pairs; long-form entries included. */
function ports(service: any): { host: string; container: string }[] {
  return (service?.ports ?? []).map((p: any) => {
    if (typeof p === 'object') return { host: String(p.published), container: String(p.target) }
    const parts = String(p).split(':')
    return { container: parts.at(-1)!.split('/')[0]!, host: parts.length > 1 ? parts.at(-2)! : '' }
  })
}

describe('compose.yaml', () => {
  test('defines postgres, redis, migrate, api and worker', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['postgres', 'redis', 'migrate', 'api', 'worker']))
    expect(String(services.postgres.image)).toMatch(/^postgres:15(\b|$)/)
    expect(String(services.redis.image)).toMatch(/^redis:7(\b|$)/)
    for (const name of appServices) expect(services[name].build).toBeDefined()
  })

  test('api publishes 8000 and listens where it publishes', () => {
    const api = services.api
    expect(ports(api)).toContainEqual({ host: '8000', container: '8000' })
    const env = environment(api)
    const listensOn = String(fields.PORT!.parse(env.PORT)) // the schema default when PORT is unset
    expect(ports(api).map((p) => p.container)).toContain(listensOn)
    // a non-loopback HOST, or the published port reaches nothing
    expect(env.HOST ?? String(fields.HOST!.parse(undefined))).toBe('0.0.0.0')
  })

  for (const name of appServices) {
    test(`${name}: every environment variable is one src/config.ts reads, with a value it accepts`, () => {
      const env = environment(services[name])
      expect(Object.keys(env).length).toBeGreaterThan(0)
      for (const [key, value] of Object.entries(env)) {
        expect(Object.keys(fields), `${name} sets ${key}, which src/config.ts does not read`).toContain(key)
        const parsed = fields[key]!.safeParse(value)
        expect(parsed.success, `${name}: ${key}=${value}: ${parsed.error?.issues[0]?.message}`).toBe(true)
      }
    })

    test(`${name}: DATABASE_URL and REDIS_URL name the compose services`, () => {
      const env = environment(services[name])
      const db = new URL(env.DATABASE_URL ?? '')
      expect(db.hostname).toBe('postgres')
      expect(db.port || '5432').toBe('5432')
      // the password must be the one the postgres service is started with
      expect(decodeURIComponent(db.password)).toBe(String(environment(services.postgres).POSTGRES_PASSWORD))
      expect(new URL(env.REDIS_URL ?? '').hostname).toBe('redis')
    })
  }

  test("each role runs the binary's subcommand of the same name", () => {
    for (const name of ['migrate', 'worker', 'api']) expect(Object.keys(serverCommands)).toContain(name)
    expect(command(services.migrate)).toEqual(['taskline', 'migrate'])
    expect(command(services.worker)).toEqual(['taskline', 'worker'])
    // api may rely on the image's CMD; if it names a command, it is the api one
    if (services.api.command !== undefined) expect(command(services.api)).toEqual(['taskline', 'api'])
  })

  test('migrate waits for a healthy postgres and runs once', () => {
    expect(condition(services.migrate, 'postgres')).toBe('service_healthy')
    // a restarting migrate never "completes", and api/worker would wait forever
    expect([undefined, 'no']).toContain(services.migrate.restart)
  })

  for (const name of ['api', 'worker']) {
    test(`${name} starts after migrate succeeded and redis is healthy`, () => {
      expect(condition(services[name], 'migrate')).toBe('service_completed_successfully')
      expect(condition(services[name], 'redis')).toBe('service_healthy')
    })
  }

  test('postgres, redis and api have healthchecks; the api one asks /readyz on its port', () => {
    for (const name of ['postgres', 'redis', 'api']) {
      const hc = services[name].healthcheck
      expect(hc, `${name} has no healthcheck`).toBeDefined()
      expect(hc.disable).not.toBe(true)
      expect(Array.isArray(hc.test) ? hc.test.length : String(hc.test).length).toBeGreaterThan(0)
    }
    expect(services.postgres.healthcheck.test.join(' ')).toContain('pg_isready')
    expect(services.redis.healthcheck.test.join(' ')).toContain('redis-cli')
    // The image has no shell and no curl: exec form, the binary's own check, which
    // asks /readyz on 127.0.0.1:$PORT; the test above ties PORT to the published port.
    expect(services.api.healthcheck.test).toEqual(['CMD', 'taskline', 'healthcheck'])
    expect(Object.keys(serverCommands)).toContain('healthcheck')
  })

  test('docker stop gives the worker longer than its own shutdown grace', () => {
    const graceMs = Number(fields.SHUTDOWN_GRACE_MS!.parse(environment(services.worker).SHUTDOWN_GRACE_MS))
    // Docker's default is 10 s
    const stopMs = services.worker.stop_grace_period ? durationMs(services.worker.stop_grace_period) : 10_000
    expect(stopMs).toBeGreaterThan(graceMs)
  })
})

describe('Dockerfile', () => {
  // Continuation lines joined, comments dropped: one instruction per entry.
  const instructions = dockerfile
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
  /** The instructions of each stage, FROM first, with the stage's name if it has one. */
  const stages = instructions.reduce<{ name?: string; lines: string[] }[]>((acc, line) => {
    if (/^FROM\s/i.test(line)) acc.push({ name: /\sAS\s+(\S+)$/i.exec(line)?.[1], lines: [] })
    acc.at(-1)?.lines.push(line)
    return acc
  }, [])
  const named = (lines: string[], word: string) => lines.filter((l) => l.toUpperCase().startsWith(`${word} `))
  const build = stages[0]!
  const runtime = stages.at(-1)!
  const buildScript = pkg.scripts.build ?? ''
  /** Where `bun run build` writes the binary. */
  const outfile = /--outfile[= ](\S+)/.exec(buildScript)?.[1]

  test('builds in the official Bun 1.4 image and ships a small glibc image without Bun', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2)
    for (const stage of stages.slice(0, -1)) {
      expect(stage.lines[0]).toMatch(/^FROM\s+(--platform=\S+\s+)?oven\/bun:1\.4(\.\d+)?(-[\w.-]+)?(@sha256:[0-9a-f]+)?\s+AS\s+[\w-]+$/i)
    }
    // The binary links glibc (a musl image such as alpine cannot run it) and nothing else.
    expect(runtime.lines[0]).toMatch(/^FROM\s+(gcr\.io\/distroless\/(base|cc)-debian\d+|debian:[\w.-]*slim)(:[\w.-]+)?(@sha256:[0-9a-f]+)?(\s+AS\s+[\w-]+)?$/i)
  })

  test('the build stage installs from the lockfile, production dependencies only, and runs bun run build', () => {
    const runs = named(build.lines, 'RUN')
    const install = runs.filter((l) => /\bbun\s+(install|i)\b/.test(l))
    expect(install.length).toBeGreaterThan(0)
    for (const line of install) {
      expect(line).toContain('--frozen-lockfile')
      expect(line).toMatch(/--production\b/)
    }
    expect(runs.some((l) => /^RUN\s+bun\s+run\s+build$/.test(l))).toBe(true)
    // the script it runs compiles src/bin/taskline.ts to one file
    expect(buildScript).toMatch(/^bun build --compile\b/)
    expect(buildScript.split(/\s+/)).toContain('src/bin/taskline.ts')
    expect(outfile).toBe('dist/taskline')
  })

  test('every path a COPY names exists in the repo and is not in .dockerignore', async () => {
    const ignored = (await read('.dockerignore'))
      .split(/\r?\n/)
      .map((l) => l.trim().replace(/^\/|\/$/g, ''))
      .filter((l) => l && !l.startsWith('#'))
    const copies = named(instructions, 'COPY').filter((l) => !/--from=/.test(l))
    expect(copies.length).toBeGreaterThan(0)
    const sources = copies.flatMap((line) => {
      const args = line
        .split(/\s+/)
        .slice(1)
        .filter((a) => !a.startsWith('--'))
      return args.slice(0, -1) // the last argument is the destination
    })
    for (const src of sources) {
      expect(existsSync(join(root, src)), `COPY names ${src}, which is not in the repo`).toBe(true)
      expect(ignored, `COPY names ${src}, but .dockerignore leaves it out of the build context`).not.toContain(src.replace(/^\.\/|\/$/g, ''))
    }
    // what the build needs: the install inputs, the code, and db/ for the embedded migrations
    const top = new Set(sources.map((s) => s.replace(/^\.\//, '').split('/')[0]))
    for (const needed of ['package.json', 'bun.lock', 'tsconfig.json', 'src', 'db']) expect(top).toContain(needed)
  })

  test('the runtime stage gets the binary onto PATH and, for mounted handler modules, the handler deps at /node_modules', () => {
    const copies = named(runtime.lines, 'COPY').map((l) => l.split(/\s+/).slice(1))
    expect(copies).toHaveLength(2)
    for (const [from] of copies) expect(from).toBe(`--from=${build.name}`)
    const workdir = named(build.lines, 'WORKDIR').at(-1)?.split(/\s+/)[1] ?? '/'
    expect(copies[0]!.slice(1)).toEqual([join(workdir, outfile ?? ''), '/usr/local/bin/taskline'])
    // What scripts/handler-deps.ts lays out in the build stage (test/package.user-project.test.ts runs the binary on it).
    const deps = named(build.lines, 'RUN').find((l) => l.includes('scripts/handler-deps.ts'))
    const dir = deps?.split(/\s+/).at(-1)
    expect(deps).toBe(`RUN bun scripts/handler-deps.ts ${dir}`)
    expect(copies[1]!.slice(1)).toEqual([`${dir}/node_modules`, '/node_modules'])
  })

  test('runs as a non-root user, exposes 8000 and starts the api by default', () => {
    const user = named(runtime.lines, 'USER').at(-1)?.split(/\s+/)[1]
    // distroless :nonroot is uid 65532; a USER-less image would run as root
    expect(user).toBeDefined()
    expect(['root', '0', '0:0']).not.toContain(user!)
    expect(named(runtime.lines, 'EXPOSE').join(' ')).toMatch(/\b8000\b/)
    const cmd = named(runtime.lines, 'CMD').at(-1) ?? ''
    const args = cmd.replace(/^CMD\s+/i, '').trim()
    // exec form, so taskline is PID 1 and gets docker stop's SIGTERM itself
    expect(args.startsWith('[')).toBe(true)
    expect(JSON.parse(args)).toEqual(['taskline', 'api'])
    expect(named(runtime.lines, 'ENTRYPOINT')).toEqual([])
  })
})
