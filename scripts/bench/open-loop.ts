/**
 * An open loop's schedule: request k (from 0) is due at start + k / rate
 * seconds, and each is timed from when it was due, so a load process that
 * falls behind shows as latency instead of a lower rate. How many are due
 * `elapsedMs` after the start: the first at once, not one interval late.
 */
export const dueCount = (elapsedMs: number, rate: number): number => Math.floor((elapsedMs * rate) / 1000) + 1

/** When request k is due, on the clock `start` was read from. */
export const dueAt = (start: number, k: number, rate: number): number => start + (k / rate) * 1000
