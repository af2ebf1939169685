/** Every Redis key Taskline touches, in one place, under one prefix. */
export function streamKeys(prefix: string) {
  return {
    prefix,
    /** Jobs to run: one entry per enqueue of a task, read by the workers' group. */
    jobs: `${prefix}jobs`,
    /** Status events: read by every API instance (fan-out). */
    events: `${prefix}events`,
    /** Pub/sub channel of cancelled or deleted task ids: how a running handler hears of it at once. */
    cancels: `${prefix}cancels`,
    /** Dead letters: jobs no worker could ever run, with the reason. */
    deadLetters: `${prefix}dead-letters`,
    /** Set when Redis holds our state; its absence means Redis lost everything. */
    epoch: `${prefix}epoch`,
    workersGroup: 'workers',
  } as const
}

export type StreamKeys = ReturnType<typeof streamKeys>
