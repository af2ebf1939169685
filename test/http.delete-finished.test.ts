import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'kysely'
import type { TaskStatus } from '../src/domain/tasks/task'
import { createToken } from '../src/domain/tokens/token.service'
import { TasklineClient } from '../src/client/taskline-client'
import { insertTaskRows } from './helpers/database'
import { startSystem, type TestSystem } from './helpers/system'

let sys: TestSystem
let alice: { id: number; token: string }, bob: { id: number; token: string }, root: { id: number; token: string }
beforeAll(async () => {
  sys = await startSystem({ workers: 0, env: { AUTH: 'required' } })
  alice = await createToken(sys.db, 'alice', false)
  bob = await createToken(sys.db, 'bob', false)
  root = await createToken(sys.db, 'root', true)
})
afterAll(() => sys.stop())

const HOUR = 3_600_000

async function del(token: string, query: string) {
  const res = await fetch(`${sys.http}/api/tasks/${query}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })
  return { status: res.status, body: (await res.json()) as any }
}

async function finished(owner: number, status: TaskStatus, agoMs: number, n: number): Promise<number[]> {
  const at = new Date(Date.now() - agoMs)
  const rows = await insertTaskRows(
    sys.db,
    Array.from({ length: n }, (_, i) => ({ title: `${status} ${i}`, status, finished_at: at, owner_id: owner })),
  )
  return rows.map((r) => r.id)
}

async function existing(ids: number[]): Promise<number[]> {
  const rows = await sys.db.selectFrom('tasks').select('id').where('id', 'in', ids).orderBy('id').execute()
  return rows.map((r) => r.id)
}

const before = (agoMs: number) => encodeURIComponent(new Date(Date.now() - agoMs).toISOString())

describe('DELETE /api/tasks/?status=…&finished_before=…', () => {
  test('refuses a status that is not terminal, or none, naming status', async () => {
    for (const q of [
      `?status=PENDING&finished_before=${before(0)}`,
      `?status=PROCESSING&finished_before=${before(0)}`,
      `?finished_before=${before(0)}`,
      `?status=done&finished_before=${before(0)}`,
    ]) {
      const res = await del(root.token, q)
      expect(res.status, q).toBe(400)
      expect(res.body.error.code).toBe('validation_error')
      expect(res.body.error.details.map((d: any) => d.path)).toContain('status')
      expect(res.body.error.message).toContain('status')
    }
  })

  test('refuses a missing or malformed finished_before, naming it', async () => {
    for (const q of ['?status=COMPLETED', '?status=COMPLETED&finished_before=yesterday', '?status=COMPLETED&finished_before=2026-12-01']) {
      const res = await del(root.token, q)
      expect(res.status, q).toBe(400)
      expect(res.body.error.details.map((d: any) => d.path)).toContain('finished_before')
    }
  })

  test("a non-admin deletes only its own tasks, an admin everyone's; newer, other-status and active tasks stay", async () => {
    await sql`truncate tasks, task_events`.execute(sys.db)
    const aliceOld = await finished(alice.id, 'COMPLETED', 2 * HOUR, 3)
    const bobOld = await finished(bob.id, 'COMPLETED', 2 * HOUR, 2)
    const aliceNew = await finished(alice.id, 'COMPLETED', 0, 1)
    const aliceFailed = await finished(alice.id, 'FAILED', 2 * HOUR, 1)
    const alicePending = await finished(alice.id, 'PENDING', 2 * HOUR, 1)

    expect(await del(alice.token, `?status=COMPLETED&finished_before=${before(HOUR)}`)).toEqual({ status: 200, body: { deleted: 3 } })
    expect(await existing(aliceOld)).toEqual([])
    expect(await existing(bobOld)).toEqual(bobOld)
    const { n } = await sys.db
      .selectFrom('task_events')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('task_id', 'in', aliceOld)
      .executeTakeFirstOrThrow()
    expect(Number(n)).toBe(0)
    // Again: nothing of hers is left to delete.
    expect((await del(alice.token, `?status=COMPLETED&finished_before=${before(HOUR)}`)).body).toEqual({ deleted: 0 })

    expect((await del(root.token, `?status=COMPLETED&finished_before=${before(HOUR)}`)).body).toEqual({ deleted: 2 })
    expect(await existing(bobOld)).toEqual([])
    const kept = [...aliceNew, ...aliceFailed, ...alicePending]
    expect(await existing(kept)).toEqual(kept.toSorted((a, b) => a - b))
  })

  test('the typed client sends it and reads the count', async () => {
    await sql`truncate tasks, task_events`.execute(sys.db)
    await finished(bob.id, 'CANCELLED', 2 * HOUR, 4)
    const client = new TasklineClient({ baseUrl: sys.http, token: bob.token })
    expect(await client.deleteFinishedTasks({ status: 'CANCELLED', finished_before: new Date(Date.now() - HOUR).toISOString() })).toEqual({ deleted: 4 })
  })
})
