import { beforeAll, describe, expect, test } from 'bun:test'
import { createTokenVerifier } from '../src/api/auth'
import { createToken } from '../src/domain/tokens/token.service'
import type { Logger } from '../src/infra/logger'
import { requestFrom, upgradeHeaders } from './helpers/peer-http'
import { eventually } from './helpers/poll'
import { servedApp } from './helpers/served-app'

type Line = { msg: string; fields: Record<string, unknown> }
const lines: Line[] = []
const recording: Logger = {
  debug: () => {},
  info: (msg, fields = {}) => void lines.push({ msg, fields }),
  warn: (msg, fields = {}) => void lines.push({ msg, fields }),
  error: (msg, fields = {}) => void lines.push({ msg, fields }),
  child: () => recording,
}
const served = servedApp({ logger: recording, auth: (db) => ({ mode: 'required', verify: createTokenVerifier(db) }) })

let alice: { token: string; id: number }
beforeAll(async () => {
  alice = await createToken(served.db, 'alice', false)
})

const accessLine = (requestId: string) =>
  eventually(async () => lines.find((l) => l.msg === 'http' && l.fields.requestId === requestId), 5000, 10, { what: `the access log line of ${requestId}` })

describe('the access log', () => {
  test('a DELETE is attributed: the owner (token id) and the peer address are on its line', async () => {
    const auth = { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' }
    const created = await requestFrom(`${served.url}/api/tasks/`, { method: 'POST', headers: auth, body: JSON.stringify({ title: 'doomed' }) })
    expect(created.status).toBe(201)
    const { id } = JSON.parse(created.body)
    const res = await requestFrom(`${served.url}/api/tasks/${id}/`, { method: 'DELETE', headers: auth, localAddress: '127.0.0.5' })
    expect(res.status).toBeLessThan(300)
    const line = await accessLine(res.headers['x-request-id']!)
    expect(line.fields).toMatchObject({ method: 'DELETE', status: res.status, owner: alice.id, address: '127.0.0.5' })
  })

  test('a WebSocket upgrade is logged as the 101 it was, with its owner and address', async () => {
    const headers = upgradeHeaders({ authorization: `Bearer ${alice.token}` })
    const res = await requestFrom(`${served.url}/ws/tasks/`, { headers, localAddress: '127.0.0.7' })
    expect(res.status).toBe(101)
    const line = await eventually(
      async () => lines.find((l) => l.msg === 'http' && String(l.fields.path).startsWith('/ws/tasks') && l.fields.address === '127.0.0.7'),
      5000,
      10,
      {
        what: 'the access log line of the upgrade',
      },
    )
    expect(line.fields).toMatchObject({ method: 'GET', status: 101, owner: alice.id, address: '127.0.0.7' })
  })

  test('an unauthenticated request is logged with no owner and its address', async () => {
    const res = await requestFrom(`${served.url}/api/tasks/`, { localAddress: '127.0.0.6' })
    expect(res.status).toBe(401)
    expect((await accessLine(res.headers['x-request-id']!)).fields).toMatchObject({ status: 401, owner: null, address: '127.0.0.6' })
  })
})

describe('X-Request-Id', () => {
  const sent = async (requestId: string) => (await requestFrom(`${served.url}/healthz`, { headers: { 'x-request-id': requestId } })).headers['x-request-id']!

  test('a short id of letters, digits, _ - = is kept, in the response and the log', async () => {
    const id = `trace_${'a'.repeat(50)}-1=`
    expect(id.length).toBeLessThanOrEqual(64)
    expect(await sent(id)).toBe(id)
    await accessLine(id)
  })

  test('a long id or one with other characters is replaced by a generated one, not refused', async () => {
    for (const bad of ['x'.repeat(65), 'a'.repeat(255), 'two words', 'forged"}{"level":"error', 'ok;rm', 'é']) {
      const res = await requestFrom(`${served.url}/healthz`, { headers: { 'x-request-id': bad } })
      expect(res.status).toBe(200)
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
      await accessLine(res.headers['x-request-id']!)
    }
  })
})
