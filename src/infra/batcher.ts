/**
 * Groups calls that arrive together into one flush (one multi-row INSERT, one
 * UPDATE, one pipeline) without delaying a lone call: a flush starts as soon
 * as one may run, and calls that arrive while it runs wait for the next,
 * up to maxBatch per flush. Under load batches grow by themselves; when idle
 * every call is flushed at once, so there is no timer and no added latency.
 *
 * maxInFlight (default 1) lets that many flushes run at once. One is the
 * cheapest in CPU: each round trip costs CPU on both ends, and smaller
 * batches mean more of them. More pays when a flush is mostly
 * waiting (a commit, a lock) rather than working.
 *
 * lingerMs is for calls that come from many connections, each in a turn of
 * the event loop of its own: 16 clients answered together send their next
 * requests together, but they reach us spread over a moment, and
 * without lingering the first would go alone and the other 15 wait for it.
 * An idle batcher then waits while the calls keep coming, one loop turn at a
 * time, for at most lingerMs; a lone call waits one turn (microseconds).
 */
export function createBatcher<T, R>(flush: (items: T[]) => Promise<R[]>, { maxBatch = 500, lingerMs = 0, maxInFlight = 1 } = {}) {
  let queue: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = []
  let running = 0

  function drain() {
    // Calls that arrive while maxInFlight flushes run make the next one bigger.
    if (running < maxInFlight && queue.length > 0) {
      const batch = queue.slice(0, maxBatch)
      queue = queue.slice(batch.length)
      running++
      flush(batch.map((b) => b.item))
        .then((results) => {
          if (results.length !== batch.length) throw new Error(`batch flush returned ${results.length} results for ${batch.length} items`)
          for (const [i, b] of batch.entries()) b.resolve(results[i]!)
        })
        .catch((e) => {
          for (const b of batch) b.reject(e)
        })
        .finally(() => {
          running--
          drain()
        })
    }
  }

  let lingering = false
  function linger(seen: number, since: number) {
    setImmediate(() => {
      if (queue.length > seen && queue.length < maxBatch && performance.now() - since < lingerMs) return linger(queue.length, since)
      lingering = false
      drain()
    })
  }

  return {
    add(item: T): Promise<R> {
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, resolve, reject })
        if (running >= maxInFlight || lingering) return
        if (lingerMs > 0) {
          lingering = true
          linger(queue.length, performance.now())
        } else if (queue.length === 1) {
          // Let calls made in the same tick join this batch.
          queueMicrotask(drain)
        }
      })
    },
  }
}

/**
 * The second stage of a two-stage batch pipeline (store, then push): each
 * step starts once the one before it has settled, in hand-over order, and
 * the caller may wait for its start rather than its end, so its batcher can
 * begin storing the next batch while this one is pushed. At most one step
 * runs. Each hand-over takes its place in line at once, so idle() covers the
 * steps still waiting their turn, not only the one running.
 */
export function createRelay() {
  let last: Promise<unknown> = Promise.resolve()
  return {
    next<T>(step: () => Promise<T>): { started: Promise<void>; done: Promise<T> } {
      const started = last.then(() => {})
      const done = started.then(step)
      last = done.catch(() => {})
      return { started, done }
    },
    /** Settles once every step handed over so far has. */
    idle: () => last,
  }
}
