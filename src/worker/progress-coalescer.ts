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
  report(fraction: number): Promise<void>
  /**
   * The run is over: stops the timer and waits for a write in flight. With
   * flush, a kept value is written first, so the last fraction a failed run
   * reported is not lost; a completed run drops it, since completion stores 1.
   */
  close(o: { flush: boolean }): Promise<void>
}

export function createProgressCoalescer(
  write: (fraction: number) => Promise<void>,
  o: { intervalMs: number; onError: (e: unknown) => void },
): ProgressCoalescer {
  let lastWriteAt = -Infinity
  let kept: number | null = null
  let inFlight: Promise<void> | null = null
  let timer: ReturnType<typeof setTimeout> | null = null
  let closed = false

  function writeNow(fraction: number): Promise<void> {
    lastWriteAt = performance.now()
    const written: Promise<void> = write(fraction).finally(() => {
      if (inFlight === written) inFlight = null
    })
    inFlight = written
    return written
  }

  /** Writes the kept value, after any write still in flight (writes never overlap, so they land in order). */
  async function writeKept(): Promise<void> {
    while (inFlight) await inFlight.catch(() => {})
    if (kept === null) return
    const fraction = kept
    kept = null
    await writeNow(fraction)
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
    report(fraction) {
      if (closed) return Promise.resolve()
      if (!inFlight && performance.now() - lastWriteAt >= o.intervalMs) {
        kept = null // older than this one
        return writeNow(fraction)
      }
      kept = fraction
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
