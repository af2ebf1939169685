/**
 * Wall-clock time in fractional milliseconds. Event latency compares Postgres
 * now() (microseconds, realtime clock) with the moment a socket got the
 * message, so Date.now()'s whole milliseconds would add up to 1 ms of noise to
 * figures whose target is 5 ms. The monotonic clock is pinned to the realtime
 * one at the instant Date.now() ticks over, which makes the offset exact to
 * a few microseconds; both run on the same machine, so there is no skew.
 */
function calibrate(): number {
  const start = Date.now()
  let now = start
  while (now === start) now = Date.now()
  return now - performance.now()
}

const offset = calibrate()

export const wallMs = () => offset + performance.now()
