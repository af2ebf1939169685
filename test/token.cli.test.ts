import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { verifyToken } from '../src/domain/tokens/token.service'
import { createTestDatabase, type TestDatabase } from './helpers/database'

let database: TestDatabase
beforeAll(async () => {
  database = await createTestDatabase()
})
afterAll(() => database.drop())

const root = `${import.meta.dir}/..`
function token(...args: string[]) {
  const p = Bun.spawnSync(['bun', 'src/bin/token.ts', ...args], { cwd: root, env: { ...process.env, DATABASE_URL: database.url } })
  return { code: p.exitCode, out: p.stdout.toString().trim(), err: p.stderr.toString().trim() }
}

describe('bun run token', () => {
  test('create prints a working token once; only its hash is stored', async () => {
    const res = token('create', '--name', 'ci-bot')
    expect(res.code).toBe(0)
    expect(res.out).toMatch(/^tl_\d+_[A-Za-z0-9_-]{43}$/)
    expect(res.err).toContain('shown only this once')
    expect(await verifyToken(database.db, res.out)).toMatchObject({ name: 'ci-bot', admin: false })
    const stored = await database.db.selectFrom('api_tokens').selectAll().where('name', '=', 'ci-bot').executeTakeFirstOrThrow()
    expect(JSON.stringify(stored)).not.toContain(res.out.replace(/^tl_\d+_/, ''))
    expect(stored.secret_hash.length).toBe(32)
  })

  test('--admin makes an admin token; list shows names and roles, never secrets', () => {
    const created = token('create', '--name', 'ops', '--admin')
    expect(created.code).toBe(0)
    const list = token('list')
    expect(list.code).toBe(0)
    expect(list.out).toMatch(/\tci-bot\towner\t.*\tactive/)
    expect(list.out).toMatch(/\tops\tadmin\t.*\tactive/)
    expect(list.out).not.toContain(created.out)
  })

  test('--rate gives a token its own requests per second (0: none); list shows it', async () => {
    const fast = token('create', '--name', 'bulk-import', '--rate', '5000')
    expect(fast.code).toBe(0)
    expect(fast.err).toContain('5000 requests/s')
    expect(await verifyToken(database.db, fast.out)).toMatchObject({ name: 'bulk-import', rateLimitPerSec: 5000 })
    expect(token('create', '--name', 'unlimited', '--rate', '0').code).toBe(0)
    const list = token('list').out
    expect(list).toMatch(/\tbulk-import\towner\t5000 requests\/s\t/)
    expect(list).toMatch(/\tunlimited\towner\tno rate limit\t/)
    expect(list).toMatch(/\tci-bot\towner\tdefault rate\t/)
    for (const bad of ['-1', '1.5', 'lots']) expect(token('create', '--name', `bad${bad.length}`, '--rate', bad)).toMatchObject({ code: 2 })
  })

  test('revoke stops a token; revoking twice or an unknown name says so', async () => {
    const t = token('create', '--name', 'temp').out
    expect(token('revoke', 'temp')).toMatchObject({ code: 0, out: 'revoked "temp"' })
    expect(await verifyToken(database.db, t)).toBeNull()
    expect(token('revoke', 'temp')).toMatchObject({ code: 1, err: 'token: no active token named "temp"' })
    expect(token('list').out).toMatch(/\ttemp\towner\t.*\trevoked /)
  })

  test('bad input is one clear line and a non-zero exit', () => {
    expect(token('create', '--name', 'ci-bot')).toMatchObject({ code: 1, err: 'token: a token named "ci-bot" exists already' })
    expect(token('create', '--name', 'has space').code).toBe(2)
    expect(token('create').err).toStartWith('token: a name is required')
    expect(token('frobnicate', '--name', 'x').code).toBe(2)
  })
})
