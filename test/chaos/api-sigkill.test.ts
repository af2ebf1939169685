import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { connect, type RecordingSocket } from '../helpers/ws-client'
import { guarded, startChaosEnv, waitUntil, type ChaosEnv } from '../helpers/processes'

let env: ChaosEnv
const sockets: RecordingSocket[] = []
beforeAll(async () => {
  env = await startChaosEnv()
})
afterAll(async () => {
  for (const s of sockets) s.close()
  await env?.cleanup()
})

const TASKS = 4
const terminal = ['COMPLETED', 'FAILED', 'CANCELLED']
const changes = (s: RecordingSocket) => s.messages.filter((m) => m?.kind === 'change')
const lastSeq = (s: RecordingSocket) => Math.max(0, ...changes(s).map((m) => m.seq as number))

describe('an API instance SIGKILLed with task sockets open', () => {
  test(
    'its clients resume on another instance with after_seq and see every seq 1..N exactly once',
    guarded(
      () => env,
      async () => {
        const one = await env.spawnApi()
        const two = await env.spawnApi()
        await env.spawnWorker()
        const ids: number[] = []
        for (let i = 0; i < TASKS; i++) ids.push(await env.createTask({ duration_ms: 4000, steps: 20 }, `followed ${i}`))

        const wsOne = one.url.replace(/^http/, 'ws')
        const before = await Promise.all(ids.map((id) => connect(`${wsOne}/ws/tasks/${id}?after_seq=0`)))
        sockets.push(...before)
        // Kill it mid-stream: every task has been seen running and none has finished.
        await waitUntil(
          'every task to be changing on its socket',
          async () => {
            env.expectNoCrash()
            return before.every((s) => changes(s).some((m) => m.status === 'PROCESSING' && m.progress > 0))
          },
          20_000,
        )
        const unfinished = (await env.rows(ids)).filter((r) => !terminal.includes(r.status))
        expect(unfinished.length).toBe(TASKS)
        one.kill('SIGKILL')
        await one.exited
        const closes = await Promise.all(before.map((s) => s.closed))
        // No close frame from a killed process: the client sees an abnormal closure.
        expect(closes.map((c) => c.code)).toEqual(before.map(() => 1006))

        const wsTwo = two.url.replace(/^http/, 'ws')
        const after = await Promise.all(before.map((s, i) => connect(`${wsTwo}/ws/tasks/${ids[i]}?after_seq=${lastSeq(s)}`)))
        sockets.push(...after)
        await Promise.all(after.map((s) => s.waitFor((m) => m?.kind === 'change' && terminal.includes(m.status), 30_000)))

        const rows = await env.rows(ids)
        for (const [i, row] of rows.entries()) {
          const seen = [...changes(before[i]!), ...changes(after[i]!)].map((m) => m.seq)
          expect({ task: row.id, seen }).toEqual({ task: row.id, seen: Array.from({ length: row.seq }, (_, k) => k + 1) })
          // The kill cut each stream in the middle, so both instances carried part of it.
          expect(changes(before[i]!).length).toBeGreaterThan(0)
          expect(changes(after[i]!).length).toBeGreaterThan(0)
        }
        await env.expectInvariants(ids)
      },
    ),
    60_000,
  )
})
