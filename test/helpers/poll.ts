/**
 * Polls until fn returns a truthy value (integration tests wait on real
 * processes, not on timers). An error fn throws is retried, unless `fatal`
 * says it ends the wait at once; the timeout names `what` was awaited.
 */
export async function eventually<T>(
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  stepMs = 25,
  o: { what?: string; fatal?: (e: unknown) => boolean } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) {
      if (o.fatal?.(e)) throw e
      last = e
    }
    await Bun.sleep(stepMs)
  }
  const lastError = last ? ` (last error: ${String(last)})` : ''
  throw new Error(o.what ? `timed out after ${timeoutMs} ms waiting for ${o.what}${lastError}` : `condition not met within ${timeoutMs} ms${lastError}`)
}
