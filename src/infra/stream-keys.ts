/** Every Redis key Taskline touches, in one place, under one prefix. */
export function streamKeys(prefix: string) {
  return {
    prefix,
    /** Wake-ups: one entry per task made ready, read by the workers' group, which then claim from Postgres. */
    jobs: `${prefix}jobs`,
    /** Status events: read by every API instance (fan-out). */
    events: `${prefix}events`,
    /** Pub/sub channel of cancelled or deleted task ids: how a running handler hears of it at once. */
    cancels: `${prefix}cancels`,
    workersGroup: 'workers',
  } as const
}

export type StreamKeys = ReturnType<typeof streamKeys>
