/**
 * Stores a running task's progress at most once per interval. A handler may
 * report as often as it likes (after every item of a long loop), but each
 * stored report is a row in the task's history and a message to every
 * subscriber, so between writes only the latest fraction is kept, and it is
 * written once the interval since the last write has passed.
 */
export interface ProgressCoalescer {
  /**
   * Records a fraction: written at once (and awaited, so a write error reaches
   * the handler as before) when the interval has passed, else kept as the
   * value to write next, and the promise settles at once.
   */
  report(fraction: number, message?: string): Promise<void>
  /**
   * The run is over: stops the timer and waits for a write in flight. With
   * flush, a kept value is written first, so the last fraction a failed run
   * reported is not lost; a completed run drops it, since completion stores 1.
   */
  close(o: { flush: boolean }): Promise<void>
}

/** One report: a fraction in 0..1 and what the handler said about it. */
export interface Progress {
  fraction: number
  message?: string
}

export function createProgressCoalescer(write: (p: Progress) => Promise<void>, o: { intervalMs: number; onError: (e: unknown) => void }): ProgressCoalescer {
  let lastWriteAt = -Infinity
  let kept: Progress | null = null
  let inFlight: Promise<void> | null = null
  let timer: ReturnType<typeof setTimeout> | null = null
  let closed = false

  function writeNow(p: Progress): Promise<void> {
    lastWriteAt = performance.now()
    const written: Promise<void> = write(p).finally(() => {
      if (inFlight === written) inFlight = null
    })
    inFlight = written
    return written
  }

  /** Writes the kept value, after any write still in flight (writes never overlap, so they land in order). */
  async function writeKept(): Promise<void> {
    while (inFlight) await inFlight.catch(() => {})
    if (kept === null) return
    const p = kept
    kept = null
    await writeNow(p)
  }

  function schedule() {
    if (timer) return
    const due = Math.max(0, lastWriteAt + o.intervalMs - performance.now())
    timer = setTimeout(() => {
      timer = null
      if (!closed) writeKept().catch(o.onError)
    }, due)
  }

  return {
    report(fraction, message) {
      if (closed) return Promise.resolve()
      const p = message === undefined ? { fraction } : { fraction, message }
      if (!inFlight && performance.now() - lastWriteAt >= o.intervalMs) {
        kept = null // older than this one
        return writeNow(p)
      }
      kept = p
      schedule()
      return Promise.resolve()
    },
    async close({ flush }) {
      closed = true
      if (timer) clearTimeout(timer)
      timer = null
      if (!flush) kept = null
      await writeKept().catch(o.onError)
    },
  }
}
