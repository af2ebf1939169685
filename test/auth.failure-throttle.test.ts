import { beforeAll, describe, expect, test } from 'bun:test'
import type { KyselyPlugin } from 'kysely'
import { createAuthThrottle } from '../src/api/auth-throttle'
import { createTokenVerifier } from '../src/api/auth'
import { formatToken, generateSecret } from '../src/domain/tokens/token'
import { createToken } from '../src/domain/tokens/token.service'
import type { Db } from '../src/infra/db'
import { requestFrom } from './helpers/peer-http'
import { servedApp } from './helpers/served-app'

const maxFailures = 5
// Every statement the verifier sends to Postgres: a throttled request must add none.
let tokenQueries = 0
const counting: KyselyPlugin = {
  transformQuery: (args) => {
    tokenQueries++
    return args.node
  },
  transformResult: async (args) => args.result,
}
const served = servedApp({
  auth: (db: Db) => ({
    mode: 'required',
    verify: createTokenVerifier(db.withPlugin(counting)),
    throttle: createAuthThrottle({ maxFailures, windowMs: 60_000, maxAddresses: 100 }),
  }),
})

const attacker = '127.0.0.2'
const neighbour = '127.0.0.3'
const madeUp = () => formatToken(900_000 + Math.floor(Math.random() * 1000), generateSecret())
const listAs = (token: string, localAddress: string) => requestFrom(`${served.url}/api/tasks/`, { headers: { authorization: `Bearer ${token}` }, localAddress })

let alice: string
let aliceId: number
beforeAll(async () => {
  const created = await createToken(served.db, 'alice', false)
  alice = created.token
  aliceId = created.id
})

describe('refused tokens, per client address', () => {
  test('past the budget an address gets 429 with Retry-After and its tokens are not looked up; another address is unaffected', async () => {
    // Seen valid once from this address, before the guessing starts (a user behind the same NAT).
    expect((await listAs(alice, attacker)).status).toBe(200)
    for (let i = 0; i < maxFailures; i++) expect((await listAs(madeUp(), attacker)).status).toBe(401)

    const queriesBefore = tokenQueries
    for (let i = 0; i < 20; i++) {
      const res = await listAs(madeUp(), attacker)
      expect(res.status).toBe(429)
      expect(JSON.parse(res.body).error.code).toBe('rate_limited')
      expect(Number(res.headers['retry-after'])).toBeWithin(1, 61)
    }
    expect(tokenQueries).toBe(queriesBefore)

    // Another address: its own budget, and the valid user goes on.
    expect((await listAs(alice, '127.0.0.1')).status).toBe(200)
    expect((await listAs(madeUp(), '127.0.0.1')).status).toBe(401)
    // The token seen valid still passes from the throttled address; a never-seen one does not get a lookup.
    expect((await listAs(alice, attacker)).status).toBe(200)
    const bob = await createToken(served.db, 'bob', false)
    expect((await listAs(bob.token, attacker)).status).toBe(429)
    expect((await listAs(bob.token, neighbour)).status).toBe(200)
  })

  test('a burst of made-up tokens sent at once is looked up no more than the budget allows', async () => {
    const queriesBefore = tokenQueries
    const answers = await Promise.all(Array.from({ length: 60 }, () => listAs(madeUp(), '127.0.0.8')))
    const statuses = answers.map((r) => r.status)
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(maxFailures)
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(60 - maxFailures)
    expect(tokenQueries - queriesBefore).toBeLessThanOrEqual(maxFailures)
  })

  test('a burst of one valid token on a cold cache costs one lookup, and none of it is throttled', async () => {
    const carol = await createToken(served.db, 'carol', false)
    const queriesBefore = tokenQueries
    const answers = await Promise.all(Array.from({ length: 40 }, () => listAs(carol.token, '127.0.0.9')))
    expect(answers.map((r) => r.status)).toEqual(Array(40).fill(200))
    expect(tokenQueries - queriesBefore).toBe(1)
  })

  test('a token id spelled with leading zeros is refused without a lookup', async () => {
    const [, , secret] = /^tl_(\d+)_(.+)$/.exec(alice)!
    const queriesBefore = tokenQueries
    const res = await listAs(`tl_0${aliceId}_${secret}`, '127.0.0.4')
    expect(res.status).toBe(401)
    expect(JSON.parse(res.body).error.code).toBe('unauthorized')
    expect(tokenQueries).toBe(queriesBefore)
    expect((await listAs(alice, '127.0.0.4')).status).toBe(200)
  })
})
