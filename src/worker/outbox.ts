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
const present = (changes: (StreamedChange | undefined)[]) => changes.filter((c): c is StreamedChange => c !== undefined)

export interface OutboxOptions extends StreamDeps {
  db: Db
}

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
 * batch order.
 */
export class Outbox {
  private readonly pushes = createRelay()
  private readonly batcher = createBatcher((items: Outgoing[]) => this.flush(items))
  private stopping = false

  constructor(private readonly o: OutboxOptions) {}

  private async flush(items: Outgoing[]): Promise<(StreamedChange | undefined)[]> {
    const finished = new Map<number, StreamedChange>()
    const changeOf = (i: Outgoing) => (isCompletion(i) ? finished.get(i.key.id) : i.change)
    try {
      for (const c of await runs.finishTasks(this.o.db, items.filter(isCompletion))) finished.set(c.id, c)
    } finally {
      // Even when the UPDATE failed (its completions are retried), what is stored already goes out, in order.
      const ready = items.flatMap((i) => (!isCompletion(i) && i.ready && i.change ? [i.change.id] : []))
      await this.pushes.next(() => publishChanges(this.o, ready, present(items.map(changeOf)))).started
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

  publish(changes: (StreamedChange | undefined)[]): Promise<unknown> {
    return Promise.all(present(changes).map((change) => this.send({ change })))
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

  /** Settles once every push handed over so far has: Redis must not be closed under one. */
  idle(): Promise<unknown> {
    return this.pushes.idle()
  }
}
