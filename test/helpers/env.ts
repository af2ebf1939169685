import { loadConfig, type Config } from '../../src/config'

/** The shared services every test talks to (CI and the dev machine run them). */
export const baseDatabaseUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

export const uniqueName = (prefix: string) => `${prefix}_${Date.now().toString(36)}_${crypto.randomUUID().slice(0, 8)}`

export function databaseUrl(name: string, base = baseDatabaseUrl): string {
  const url = new URL(base)
  url.pathname = `/${name}`
  return url.toString()
}

/** A full Config for in-process roles, quiet and fast unless a test says otherwise. */
export function testConfig(overrides: Partial<Record<keyof Config, string | number>>): Config {
  const env = Object.fromEntries(
    Object.entries({ LOG_LEVEL: 'error', PORT: 0, HOST: '127.0.0.1', AUTH: 'off', RATE_LIMIT_PER_SEC: 0, WORKER_METRICS_PORT: 0, ...overrides }).map(
      ([k, v]) => [k, String(v)],
    ),
  )
  return loadConfig(env)
}
