/**
 * Groups calls that arrive together into one flush (one multi-row INSERT, one
 * UPDATE, one pipeline) without delaying a lone call: a flush starts as soon
 * as none is running, and calls that arrive while one runs wait for the next,
 * up to maxBatch per flush. Under load batches grow by themselves; when idle
 * every call is flushed at once, so there is no timer and no added latency.
 */
export function createBatcher<T, R>(flush: (items: T[]) => Promise<R[]>, maxBatch = 500) {
  let queue: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = []
  let running = 0
  // Two flushes in flight keep the pipe full: one waits on the database while the next fills.
  const maxRunning = 2

  function drain() {
    while (running < maxRunning && queue.length > 0) {
      const batch = queue.slice(0, maxBatch)
      queue = queue.slice(batch.length)
      running++
      flush(batch.map((b) => b.item))
        .then((results) => {
          if (results.length !== batch.length) throw new Error(`batch flush returned ${results.length} results for ${batch.length} items`)
          batch.forEach((b, i) => b.resolve(results[i]!))
        })
        .catch((e) => batch.forEach((b) => b.reject(e)))
        .finally(() => {
          running--
          drain()
        })
    }
  }

  return {
    add(item: T): Promise<R> {
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, resolve, reject })
        // Let calls made in the same tick join this batch.
        if (queue.length === 1) queueMicrotask(drain)
      })
    },
  }
}
