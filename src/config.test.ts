import { describe, expect, test } from 'bun:test'
import { ConfigError, loadConfig } from './config'
import { parseDuration } from './infra/duration'

describe('configuration', () => {
  test('defaults match the documented ones', () => {
    const c = loadConfig({})
    expect(c).toMatchObject({
      PORT: 8000,
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgres://postgres:postgres@localhost:5432/postgres',
      REDIS_URL: 'redis://localhost:6379',
      KEY_PREFIX: 'taskline:',
      WORKER_CONCURRENCY: 64,
      DEMO_WORK_MS: 1000,
    })
    expect(Object.isFrozen(c)).toBe(true)
  })
  test('PUBLIC_URL is optional and kept without its trailing slash, a path prefix included', () => {
    expect(loadConfig({}).PUBLIC_URL).toBeUndefined()
    expect(loadConfig({ PUBLIC_URL: 'https://tasks.example.com/taskline/' }).PUBLIC_URL).toBe('https://tasks.example.com/taskline')
  })
  test('origin lists and handler files are comma-separated; an origin with a path is refused at startup', () => {
    const c = loadConfig({ HTTP_TASK_ALLOWED_ORIGINS: 'https://a.example, http://10.0.0.5:8080', HANDLERS: './tasks.ts, ./more.js' })
    expect(c.HTTP_TASK_ALLOWED_ORIGINS).toEqual(['https://a.example', 'http://10.0.0.5:8080'])
    expect(c.HANDLERS).toEqual(['./tasks.ts', './more.js'])
    for (const name of ['HTTP_TASK_ALLOWED_ORIGINS', 'CORS_ORIGINS']) {
      for (const bad of ['https://a.example/hooks', 'https://a.example?x=1', 'https://me@a.example']) {
        expect(() => loadConfig({ [name]: bad })).toThrow(`${name}: each entry must be an origin (scheme://host[:port]) with no path, query or user name`)
      }
    }
    // Spelled as URL.origin does, so a default port or capitals still match what a request sends.
    expect(loadConfig({ HTTP_TASK_ALLOWED_ORIGINS: 'https://Billing.internal:443,HTTP://A.EXAMPLE:80/' }).HTTP_TASK_ALLOWED_ORIGINS).toEqual([
      'https://billing.internal',
      'http://a.example',
    ])
  })
  test('numbers are read from strings; empty values fall back to defaults', () => {
    expect(loadConfig({ PORT: '9000', WORKER_CONCURRENCY: '4', HOST: '' })).toMatchObject({ PORT: 9000, WORKER_CONCURRENCY: 4, HOST: '0.0.0.0' })
  })
  test.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['WORKER_CONCURRENCY', '0'],
    ['DATABASE_URL', 'mysql://x'],
    ['REDIS_URL', 'localhost:6379'],
    ['REDIS_URL', 'redis+cluster://'],
    ['REDIS_URL', 'redis+cluster://a:7000,b:notaport'],
    ['JOB_SHARDS', '0'],
    ['JOB_SHARDS', '65'],
    ['KEY_PREFIX', 'has space'],
    ['LOG_LEVEL', 'loud'],
    ['PUBLIC_URL', 'tasks.example.com'],
    ['PUBLIC_URL', 'ftp://tasks.example.com'],
    ['PUBLIC_URL', 'https://tasks.example.com/?x=1'],
  ])('%s=%s is refused with one line naming the variable', (name, value) => {
    let error: unknown
    try {
      loadConfig({ [name]: value })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as Error).message).toStartWith(`invalid configuration: ${name}:`)
    expect((error as Error).message).not.toContain('\n')
  })
  test('retention durations: 7d, 12h, 30m, 45s, 500ms or bare ms; 0 and off keep; anything else is refused', () => {
    expect(loadConfig({})).toMatchObject({ RETENTION_COMPLETED: 7 * 86_400_000, RETENTION_FAILED: 30 * 86_400_000, RETENTION_CANCELLED: 7 * 86_400_000 })
    const c = loadConfig({ RETENTION_COMPLETED: '12h', RETENTION_FAILED: 'OFF', RETENTION_CANCELLED: '90000' })
    expect([c.RETENTION_COMPLETED, c.RETENTION_FAILED, c.RETENTION_CANCELLED]).toEqual([12 * 3_600_000, 0, 90_000])
    expect([parseDuration('30m'), parseDuration('45s'), parseDuration('500ms'), parseDuration('0'), parseDuration('0d')]).toEqual([
      1_800_000, 45_000, 500, 0, 0,
    ])
    for (const bad of ['3 weeks', '1.5d', '-1d', '7D1h', 'd', '99999999999999999d']) {
      expect(() => loadConfig({ RETENTION_FAILED: bad }), bad).toThrow('RETENTION_FAILED: must be a duration like 7d')
    }
    // A parsed config read back as text (as a test helper does) parses to the same values.
    const again = loadConfig(Object.fromEntries(Object.entries(c).map(([k, v]) => [k, String(v)])))
    expect([again.RETENTION_COMPLETED, again.RETENTION_FAILED, again.RETENTION_CANCELLED]).toEqual([
      c.RETENTION_COMPLETED,
      c.RETENTION_FAILED,
      c.RETENTION_CANCELLED,
    ])
  })
})
