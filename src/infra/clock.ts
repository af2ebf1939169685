/**
 * Wall-clock time in fractional milliseconds. Event latency is measured from
 * the moment a producer saw its change committed to the moment a socket got
 * it, in different processes, so Date.now()'s whole milliseconds would add up
 * to 1 ms of noise to figures whose target is 5 ms. The monotonic clock is
 * pinned to the realtime one at the instant Date.now() ticks over, which makes
 * the offset exact to a few microseconds (within one host; across hosts the
 * clocks' skew adds in).
 */
function calibrate(): number {
  const start = Date.now()
  let now = start
  while (now === start) now = Date.now()
  return now - performance.now()
}

const offset = calibrate()

export const wallMs = () => offset + performance.now()
