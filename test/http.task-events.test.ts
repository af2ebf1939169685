import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'kysely'
import type { Db } from '../src/infra/db'
import { createClient, taskEvents } from '../src/client'
import { appUnderTest } from './helpers/app'
import { postJson, startSystem, type TestSystem } from './helpers/system'

/**
 * GET /api/tasks/:id/events/ answers a page at a time (a task's history can
 * be hundreds of thousands of events), and every `next` link, here and on
 * GET /api/tasks/, is relative or on PUBLIC_URL: never on the request's Host.
 */

const h = appUnderTest()
const base = 'http://api.invalid'

/** A task whose history is seq 1..n (n - 1 progress events written straight to the table). */
async function taskWithHistory(db: Db, n: number): Promise<number> {
  const { id } = await db
    .insertInto('tasks')
    .values({ title: `history of ${n}` })
    .returning('id')
    .executeTakeFirstOrThrow()
  await sql`insert into task_events (task_id, seq, status, progress)
            select ${id}, g, (case when g = 1 then 'PENDING' else 'PROCESSING' end)::task_status, (g - 1)::float8 / ${n}
              from generate_series(1, ${n}) g`.execute(db)
  await db.updateTable('tasks').set({ seq: n }).where('id', '=', id).execute()
  return id
}

/** Follows `next` from the first page until null, checking each page holds at most `limit` events. */
async function walk(first: string, limit: number) {
  const pages: any[] = []
  for (let path: string | null = first; path !== null; ) {
    const res = await h.call(path)
    expect(res.status).toBe(200)
    expect(res.body.results.length).toBeLessThanOrEqual(limit)
    pages.push(res.body)
    if (res.body.next !== null) expect(res.body.next).toStartWith('/api/tasks/')
    path = res.body.next
    expect(pages.length).toBeLessThan(50)
  }
  return pages
}
const seqsOf = (pages: any[]) => pages.flatMap((p) => p.results.map((e: any) => e.seq))
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe('GET /api/tasks/:id/events/ pages', () => {
  let id: number
  beforeAll(async () => {
    id = await taskWithHistory(h.db, 250)
  })

  test('100 events by default, oldest first, with a relative next link carrying after_seq', async () => {
    const { status, body } = await h.call(`/api/tasks/${id}/events/`)
    expect(status).toBe(200)
    expect(Object.keys(body).sort()).toEqual(['next', 'results', 'task_id'])
    expect(body.results.map((e: any) => e.seq)).toEqual(range(1, 100))
    expect(body.next).toBe(`/api/tasks/${id}/events/?after_seq=100`)
  })

  test('following next visits every event exactly once, in order, and the last page has next null', async () => {
    const pages = await walk(`/api/tasks/${id}/events/?limit=30`, 30)
    expect(pages.map((p) => p.results.length)).toEqual([30, 30, 30, 30, 30, 30, 30, 30, 10])
    expect(seqsOf(pages)).toEqual(range(1, 250))
    expect(pages.at(-1).next).toBeNull()
    // next keeps the other parameters
    expect(new URL(pages[0].next, base).searchParams.get('limit')).toBe('30')
  })

  test('an exact last page has next null', async () => {
    const pages = await walk(`/api/tasks/${id}/events/?limit=125`, 125)
    expect(pages.map((p) => p.results.length)).toEqual([125, 125])
    expect(pages.at(-1).next).toBeNull()
  })

  test('after_seq starts after it; past the end is an empty last page', async () => {
    const { body } = await h.call(`/api/tasks/${id}/events/?after_seq=245`)
    expect(body.results.map((e: any) => e.seq)).toEqual(range(246, 250))
    expect(body.next).toBeNull()
    expect((await h.call(`/api/tasks/${id}/events/?after_seq=250`)).body).toEqual({ task_id: id, results: [], next: null })
  })

  test('limit goes up to 1000', async () => {
    const long = await taskWithHistory(h.db, 1200)
    const pages = await walk(`/api/tasks/${long}/events/?limit=1000`, 1000)
    expect(pages.map((p) => p.results.length)).toEqual([1000, 200])
    expect(seqsOf(pages)).toEqual(range(1, 1200))
  })

  test.each([
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=-5', 'limit'],
    ['after_seq=-1', 'after_seq'],
    ['after_seq=1.5', 'after_seq'],
    ['after_seq=abc', 'after_seq'],
    ['after_seq=', 'after_seq'],
    ['after_seq=99999999999', 'after_seq'],
    ['after_seq=1&after_seq=2', 'after_seq'],
    ['cursor=5', 'cursor'],
  ])('?%s is a 400 naming the field', async (query, field) => {
    const res = await h.call(`/api/tasks/${id}/events/?${query}`)
    expect(res.status).toBe(400)
    expect(res.body.error.code).toBe('validation_error')
    expect(res.body.error.details.map((d: any) => d.path)).toContain(field)
  })

  test('a missing task is a 404 whatever the page', async () => {
    const res = await h.call('/api/tasks/424242/events/?after_seq=10&limit=5')
    expect(res.status).toBe(404)
    expect(res.body.error.code).toBe('not_found')
  })
})

describe('next links never point at the Host the client sent', () => {
  let server: ReturnType<typeof Bun.serve>
  beforeAll(async () => {
    server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: h.app.fetch })
    for (let i = 0; i < 3; i++) await h.call('/api/tasks/', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"title":"listed"}' })
  })
  afterAll(() => server.stop(true))

  const nextVia = async (path: string, host: string) => {
    const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { headers: { Host: host } })
    expect(res.status).toBe(200)
    return ((await res.json()) as { next: string }).next
  }

  test('without PUBLIC_URL they are relative: path and query only', async () => {
    const id = await taskWithHistory(h.db, 5)
    const links = [await nextVia('/api/tasks/?limit=1', 'evil.example'), await nextVia(`/api/tasks/${id}/events/?limit=2`, 'evil.example:8443')]
    for (const link of links) {
      expect(link).not.toContain('evil')
      expect(link).toMatch(/^\/api\/tasks\/[^/]/)
    }
    expect(links[1]).toBe(`/api/tasks/${id}/events/?limit=2&after_seq=2`)
  })

  test("the typed client's taskEvents follows them to the end", async () => {
    const id = await taskWithHistory(h.db, 250)
    const seqs: number[] = []
    for await (const e of taskEvents(createClient(`http://127.0.0.1:${server.port}`), id, { afterSeq: 3, limit: 40 })) seqs.push(e.seq)
    expect(seqs).toEqual(range(4, 250))
  })
})

describe('with PUBLIC_URL', () => {
  let sys: TestSystem
  beforeAll(async () => {
    sys = await startSystem({ workers: 0, env: { PUBLIC_URL: 'https://tasks.example.com/taskline/' } })
  })
  afterAll(() => sys.stop())

  test('next links are on it, path prefix included, whatever Host says', async () => {
    for (let i = 0; i < 2; i++) await postJson(`${sys.http}/api/tasks/`, { title: 'public' })
    const id = await taskWithHistory(sys.db, 3)
    const get = async (path: string) => ((await (await fetch(`${sys.http}${path}`, { headers: { Host: 'evil.example' } })).json()) as { next: string }).next
    expect(await get('/api/tasks/?limit=1')).toMatch(/^https:\/\/tasks\.example\.com\/taskline\/api\/tasks\/\?limit=1&cursor=\d+$/)
    expect(await get(`/api/tasks/${id}/events/?limit=1`)).toBe(`https://tasks.example.com/taskline/api/tasks/${id}/events/?limit=1&after_seq=1`)
  })
})
