import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { KyselyPlugin } from 'kysely'
import { createTokenVerifier } from '../src/api/auth'
import { formatToken, generateSecret } from '../src/domain/tokens/token'
import { createToken } from '../src/domain/tokens/token.service'
import { revokeTokenByName } from '../src/domain/tokens/token.repository'
import { createTestDatabase, type TestDatabase } from './helpers/database'

let database: TestDatabase
beforeAll(async () => {
  database = await createTestDatabase()
})
afterAll(() => database.drop())

/** The database as the verifier sees it, counting every statement sent. */
function countingDb() {
  let queries = 0
  const plugin: KyselyPlugin = {
    transformQuery: (args) => {
      queries++
      return args.node
    },
    transformResult: async (args) => args.result,
  }
  return { db: database.db.withPlugin(plugin), queries: () => queries }
}

describe('the API token verifier', () => {
  test('remembers an answer for its window, then asks Postgres again (a revocation is seen)', async () => {
    const { token, id, name } = await createToken(database.db, 'cached', false)
    const verify = createTokenVerifier(database.db, 150)
    expect((await verify(token))?.ownerId).toBe(id)
    await revokeTokenByName(database.db, name)
    expect((await verify(token))?.ownerId).toBe(id)
    await Bun.sleep(200)
    expect(await verify(token)).toBeNull()
  })

  test('remembers at most twice maxEntries tokens, however many it is shown', async () => {
    const tokens = await Promise.all(Array.from({ length: 25 }, (_, i) => createToken(database.db, `many-${i}`, false)))
    const verify = createTokenVerifier(database.db, 60_000, 10)
    for (const { token, id } of tokens) expect((await verify(token))?.ownerId).toBe(id)
    expect(verify.cached()).toBeGreaterThanOrEqual(10)
    expect(verify.cached()).toBeLessThanOrEqual(20)
    // The newest are still remembered.
    const last = tokens.at(-1)!
    await revokeTokenByName(database.db, last.name)
    expect((await verify(last.token))?.ownerId).toBe(last.id)
  })

  test('an unknown token is looked up once per window, and a flood of them neither outgrows the bound nor pushes out a valid token', async () => {
    const counted = countingDb()
    const verify = createTokenVerifier(counted.db, 60_000, 10)
    const { token, id } = await createToken(database.db, 'flooded', false)
    expect((await verify(token))?.ownerId).toBe(id)
    const unknown = formatToken(id + 1000, generateSecret())
    expect(await verify(unknown)).toBeNull()
    expect(await verify(unknown)).toBeNull()
    expect(counted.queries()).toBe(2)

    for (let i = 0; i < 100; i++) expect(await verify(formatToken(id + 2000 + i, generateSecret()))).toBeNull()
    expect(verify.cached()).toBeLessThanOrEqual(1 + 20)
    const before = counted.queries()
    expect((await verify(token))?.ownerId).toBe(id)
    expect(counted.queries()).toBe(before)
  })
})
