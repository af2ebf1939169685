/**
 * Lifecycle load: POST demo tasks with duration 0 and time each one until its
 * COMPLETED event arrives on ONE all-tasks socket (/ws/tasks/), matched by
 * task_id. A COMPLETED event may overtake the POST's own response, so
 * completions are kept by id and a POST that returns late finds its own.
 * Closed loop (`concurrency` clients, each waiting for its task to complete)
 * or open loop (`rate` tasks/s on a schedule; latency from the scheduled time).
 */
import { Histogram } from './histogram'
import { fail, job, reply } from './child-runtime'
import { openSocket } from './ws-client'
import { dueAt, dueCount } from './open-loop'
import { wallMs } from '../../src/infra/clock'
import { bearer, repeatedRequest, type Http1Answer } from './http1-client'

export interface LifecycleJob {
  apiUrl: string
  wsUrl: string
  concurrency?: number
  rate?: number
  warmupMs: number
  durationMs: number
  /** How long to wait, after the window, for tasks still in flight before calling them missing. */
  drainMs: number
  /** The API token: `Authorization: Bearer` on each POST, the subprotocol pair on the socket. */
  token: string
}

const j = job<LifecycleJob>()
const MAX_WARMUP_MS = 20_000
const completedAt = new Map<number, number>()
const waiters = new Map<number, (at: number) => void>()
let duplicates = 0
let posted = 0
let postErrors = 0
let firstError: string | null = null
const pending = new Set<number>()

function onMessage(data: string) {
  const now = performance.now()
  const m = JSON.parse(data)
  if (m.kind !== 'change' || m.status !== 'COMPLETED') return
  if (completedAt.has(m.task_id)) {
    duplicates++
    return
  }
  completedAt.set(m.task_id, now)
  const w = waiters.get(m.task_id)
  if (w) {
    waiters.delete(m.task_id)
    w(now)
  }
}

const createTask = repeatedRequest(new URL(`${j.apiUrl}/api/tasks/`), 'POST', { title: 'bench lifecycle', payload: { duration_ms: 0 } }, bearer(j.token))

/** How a POST goes out: by fetch (open loop), or on a closed-loop client's own connection. */
type Post = () => Promise<Http1Answer>

/** One task from POST to COMPLETED; resolves with its id and completion time, or null if the POST failed. */
async function lifecycle(post: Post, answered: (at: number) => void): Promise<{ id: number; at: number } | null> {
  let id: number
  try {
    const res = await post()
    answered(performance.now())
    const task = JSON.parse(res.body.toString()) as { id?: number }
    if (res.status !== 201 || typeof task.id !== 'number') throw new Error(`POST answered ${res.status}`)
    id = task.id
  } catch (e) {
    postErrors++
    firstError ??= (e as Error).message
    return null
  }
  posted++
  const done = completedAt.get(id)
  if (done !== undefined) return { id, at: done }
  pending.add(id)
  return new Promise((resolve) => {
    waiters.set(id, (at) => {
      pending.delete(id)
      resolve({ id, at })
    })
  })
}

/** Each timed task's COMPLETED receive time on the wall clock, to set beside its row's finished_at. */
function received(ids: number[]): { ids: number[]; wallMs: number[] } {
  const toWall = wallMs() - performance.now()
  return { ids, wallMs: ids.map((id) => completedAt.get(id)! + toWall) }
}

async function main() {
  const ws = await openSocket(j.wsUrl, onMessage, { token: j.token })
  const hist = new Histogram()
  // POST to its answer: the share of the latency spent before the task is in Postgres.
  const answers = new Histogram()
  let windowStart = 0
  let windowEnd = Infinity
  let completedInWindow = 0
  // The tasks timed, whose COMPLETED receive times go back for the finish-to-socket stage.
  const timed: number[] = []
  const inWindow = (startedAt: number) => startedAt >= windowStart && startedAt < windowEnd
  const track = (post: Post, startedAt: number) =>
    lifecycle(post, (at) => {
      if (inWindow(startedAt)) answers.record(at - startedAt)
    }).then((done) => {
      if (done === null) return
      const { id, at } = done
      if (at >= windowStart && at <= windowEnd) completedInWindow++
      if (!inWindow(startedAt)) return
      hist.record(at - startedAt)
      timed.push(id)
    })

  // The window opens once the warm-up time has passed AND tasks are completing:
  // a system still busy with an earlier phase's tail would otherwise be measured
  // as a window with nothing in it. How long that took is reported.
  const t0 = performance.now()
  windowStart = Infinity
  windowEnd = Infinity
  const enough = Math.max(j.concurrency ?? 0, j.rate ?? 0)
  const opener = setInterval(() => {
    const now = performance.now()
    if (now - t0 >= j.warmupMs && (completedAt.size >= enough || now - t0 >= MAX_WARMUP_MS)) {
      windowStart = now
      windowEnd = now + j.durationMs
      clearInterval(opener)
      // The orchestrator measures CPU over exactly this window.
      reply({ type: 'window', state: 'open' })
      setTimeout(() => reply({ type: 'window', state: 'closed' }), j.durationMs)
    }
  }, 20)
  const inflight = new Set<Promise<void>>()
  if (j.rate) {
    for (let sent = 0; performance.now() < windowEnd; ) {
      const due = dueCount(performance.now() - t0, j.rate)
      for (; sent < due; sent++) {
        const p = track(createTask.byFetch, dueAt(t0, sent, j.rate)).finally(() => inflight.delete(p))
        inflight.add(p)
      }
      await Bun.sleep(1)
    }
  } else {
    await Promise.all(
      Array.from({ length: j.concurrency ?? 1 }, async () => {
        const post = createTask.onOwnConnection()
        while (performance.now() < windowEnd) await track(post, performance.now())
        await post.close()
      }),
    )
  }
  // Closed-loop clients have all returned; an open loop may still wait on some.
  await Promise.race([Promise.all(inflight), Bun.sleep(j.drainMs)])
  // Late duplicates of tasks that just completed would still be on their way.
  await Bun.sleep(200)
  ws.close()
  reply({
    type: 'result',
    windowMs: j.durationMs,
    warmupMs: windowStart - t0,
    completedInWindow,
    latency: hist.toJSON(),
    answers: answers.toJSON(),
    posted,
    postErrors,
    firstError,
    missing: pending.size,
    duplicates,
    received: received(timed),
  })
  setTimeout(() => process.exit(0), 50)
}

main().catch(fail)
