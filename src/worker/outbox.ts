import type { Db } from '../infra/db'
import { coerceError } from '../infra/logger'
import { createBatcher, createRelay } from '../infra/batcher'
import { publishChanges, type StreamDeps } from '../domain/streams'
import type { StreamedChange, TaskChange } from '../domain/task-events/task-event'
import * as runs from '../domain/tasks/task-runs.repository'
import type { Outcome, Run, RunKey } from './run'

/** A successful run, stored in one UPDATE with the others of its batch. */
interface Completion {
  key: RunKey
  resultJson: string
}
/** Something already stored: the change to stream, if any, and whether it left its task ready for another worker. */
export interface Stored {
  change?: StreamedChange
  ready?: boolean
}
type Outgoing = Completion | Stored
const isCompletion = (i: Outgoing): i is Completion => 'key' in i
/** SQLSTATE classes 22 (data exception) and 23 (integrity constraint): the same write fails the same way. */
export const isDataError = (e: unknown) => /^2[23]/.test(String((e as { code?: unknown } | null)?.code ?? ''))
const present = (changes: readonly (StreamedChange | undefined)[]) => changes.filter((c): c is StreamedChange => c !== undefined)

export interface OutboxOptions extends StreamDeps {
  db: Db
  /** How long a claim's events wait for a flush to ride with before they go alone (hold()). */
  holdMs?: number
  /** A claim within this long of the last flush's start is held; a later one, on a quiet worker, goes at once. */
  busyMs?: number
}

/** Long enough for a short task's completion to start its flush, short enough that no one watching sees PROCESSING late. */
const HOLD_MS = 2
/** Under load flushes follow each other closely; a worker claiming a few tasks a second is never held. */
const BUSY_MS = 20

/**
 * Everything this worker streams about the tasks it runs leaves through here,
 * in the order it was produced: a claim's PROCESSING events, then progress,
 * failures and completions. Outcomes are stored first (retrying while
 * Postgres is away), so nothing is streamed that Postgres does not hold.
 *
 * A lone change goes out at once; under load the claims ride in the round
 * trip of the next completions, and the completions of a batch are stored
 * with one UPDATE. A batch's UPDATE runs while the batch before it is still
 * being pushed, so a task finishing right after its claim does not wait for
 * the claim's events to reach Redis; pushes still leave one at a time, in
 * batch order. A claim's events are held for the next flush (or a moment at
 * most), so a short task's PROCESSING and COMPLETED share one push.
 */
export class Outbox {
  private readonly pushes = createRelay()
  private readonly batcher = createBatcher((items: Outgoing[]) => this.flush(items))
  private stopping = false
  /** Claims' changes waiting for the next flush; it takes them before its own items, which came later. */
  private held: StreamedChange[] = []
  private holdTimer: ReturnType<typeof setTimeout> | null = null
  private lastFlushAt = Number.NEGATIVE_INFINITY

  constructor(private readonly o: OutboxOptions) {}

  private async flush(items: Outgoing[]): Promise<(StreamedChange | undefined)[]> {
    this.lastFlushAt = performance.now()
    const held = this.takeHeld()
    const finished = new Map<number, StreamedChange>()
    const changeOf = (i: Outgoing) => (isCompletion(i) ? finished.get(i.key.id) : i.change)
    try {
      for (const c of await runs.finishTasks(this.o.db, items.filter(isCompletion))) finished.set(c.id, c)
    } finally {
      // Even when the UPDATE failed (its completions are retried), what is stored already goes out, in order.
      const ready = items.flatMap((i) => (!isCompletion(i) && i.ready && i.change ? [i.change.id] : []))
      await this.pushes.next(() => publishChanges(this.o, ready, [...held, ...present(items.map(changeOf))])).started
    }
    return items.map(changeOf)
  }

  /** Streams what is stored already. Never throws: a lost event is found by the hubs. */
  send(item: Stored): Promise<void> {
    return this.batcher.add(item).then(
      () => undefined,
      () => undefined,
    )
  }

  publish(changes: readonly (StreamedChange | undefined)[]): Promise<unknown> {
    return Promise.all(present(changes).map((change) => this.send({ change })))
  }

  /**
   * Streams stored changes with the next flush, or after holdMs if none
   * starts sooner: under load a claim's PROCESSING events then cost no push
   * of their own, and a short task's go out with its completion. On a quiet
   * worker (no flush for busyMs) they go at once: no added latency when idle.
   */
  hold(changes: readonly StreamedChange[]): void {
    if (changes.length === 0) return
    if (this.held.length === 0 && performance.now() - this.lastFlushAt > (this.o.busyMs ?? BUSY_MS)) {
      void this.publish(changes)
      return
    }
    this.held.push(...changes)
    this.holdTimer ??= setTimeout(() => {
      this.holdTimer = null
      if (this.held.length > 0) void this.send({})
    }, this.o.holdMs ?? HOLD_MS)
  }

  private takeHeld(): StreamedChange[] {
    const held = this.held
    this.held = []
    if (this.holdTimer) clearTimeout(this.holdTimer)
    this.holdTimer = null
    return held
  }

  /** Retries a Postgres write until it lands: an outcome is never dropped. */
  async persist<T>(what: string, write: () => Promise<T>): Promise<T> {
    for (let delay = 100; ; delay = Math.min(delay * 2, 5000)) {
      try {
        return await write()
      } catch (e) {
        // Postgres refused the data itself: writing it again would fail again.
        if (isDataError(e)) throw e
        if (this.stopping && delay >= 5000) throw e
        this.o.logger.warn(`could not record ${what}, retrying`, { error: coerceError(e).message })
        await Bun.sleep(delay)
      }
    }
  }

  /**
   * Stores a run's outcome, then streams it. Throws only when shutting down
   * with Postgres still away: lease expiry recovers the task.
   */
  async store(run: Run, outcome: Outcome): Promise<StreamedChange | undefined> {
    if (outcome.kind === 'completed') return this.persist('outcome', () => this.batcher.add({ key: run.key, resultJson: outcome.resultJson }))
    const change = await this.persist('outcome', () => this.write(run.key, outcome))
    await this.send({ change, ready: outcome.kind === 'handed-back' })
    return change
  }

  private write(key: RunKey, outcome: Exclude<Outcome, { kind: 'completed' }>): Promise<TaskChange | undefined> {
    if (outcome.kind === 'failed') return runs.failAttempt(this.o.db, key, outcome)
    if (outcome.kind === 'handed-back') return runs.handBack(this.o.db, key)
    return Promise.resolve(undefined)
  }

  /** From now on a write that keeps failing is given up at the longest backoff, so shutdown ends. */
  stopRetrying(): void {
    this.stopping = true
  }

  /** Settles once every push handed over so far (and every held change) has: Redis must not be closed under one. */
  async idle(): Promise<unknown> {
    if (this.held.length > 0) await this.send({})
    return this.pushes.idle()
  }
}
