import { afterAll, expect, test } from 'bun:test'
import { bearer, openHttp1, prepareRequest, reconnecting, repeatedRequest } from '../scripts/bench/http1-client'

// A real Bun server: echoes the request body, answers big bodies in many TCP chunks, and closes when asked.
const server = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  async fetch(req) {
    const url = new URL(req.url)
    if (url.pathname === '/big') return new Response('x'.repeat(Number(url.searchParams.get('n'))))
    if (url.pathname === '/close') return new Response('bye', { status: 503, headers: { connection: 'close' } })
    if (url.pathname === '/whoami') return Response.json({ authorization: req.headers.get('authorization') })
    return Response.json({ method: req.method, body: await req.json() }, { status: 201 })
  },
})
afterAll(() => server.stop(true))
const at = (path: string) => new URL(path, server.url)

test('the bench client sends many requests on one keep-alive connection and reads each answer whole', async () => {
  const conn = await openHttp1(at('/echo'))
  for (let i = 0; i < 50; i++) {
    const answer = await conn.send(prepareRequest(at('/echo'), 'POST', { i, title: 'ü' }))
    expect(answer.status).toBe(201)
    expect(JSON.parse(answer.body.toString())).toEqual({ method: 'POST', body: { i, title: 'ü' } })
  }
  expect(conn.closed).toBe(false)
  // An answer larger than one TCP read arrives in pieces and is put back together.
  const big = await conn.send(prepareRequest(at('/big?n=300000'), 'GET'))
  expect(big.body.length).toBe(300_000)
  conn.close()
})

test('a closed-loop client whose connection the server closed opens another for its next request', async () => {
  const client = reconnecting(at('/'))
  expect((await client.send(prepareRequest(at('/close'), 'GET'))).status).toBe(503)
  const again = await client.send(prepareRequest(at('/echo'), 'POST', { after: 'close' }))
  expect(again.status).toBe(201)
  expect(JSON.parse(again.body.toString()).body).toEqual({ after: 'close' })
  await client.close()
})

test("a repeated request gets the same answer by fetch and on a client's own connection", async () => {
  const request = repeatedRequest(at('/echo'), 'POST', { same: true })
  const own = request.onOwnConnection()
  for (const send of [request.byFetch, own, own]) {
    const answer = await send()
    expect(answer.status).toBe(201)
    expect(JSON.parse(answer.body.toString())).toEqual({ method: 'POST', body: { same: true } })
  }
  await own.close()
})

test('a repeated request carries the token the same way by fetch and on its own connection', async () => {
  const request = repeatedRequest(at('/whoami'), 'GET', undefined, bearer('tl_7_secret'))
  const own = request.onOwnConnection()
  for (const send of [request.byFetch, own]) {
    expect(JSON.parse((await send()).body.toString())).toEqual({ authorization: 'Bearer tl_7_secret' })
  }
  await own.close()
  // The references' requests carry none.
  expect(bearer(undefined)).toEqual({})
})
