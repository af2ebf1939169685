import { type FollowerOptions, socketUrl, startFollower } from './follower'
import type { TaskMessage } from './types'

export type { TaskMessage, TaskSnapshotMessage } from './types'

export interface FollowOptions extends FollowerOptions {
  /** Resume after this seq (the task as last read over HTTP); without it the socket starts with a snapshot. */
  afterSeq?: number
  /** Each snapshot and change once, in seq order, across reconnects. */
  onChange: (message: TaskMessage) => void
}

export interface TaskFollower {
  close(): void
  /** Gives up on the current socket (one that answers pings but has stopped delivering) and reconnects. */
  drop(reason: string): void
  /** The last seq delivered, which the next connection resumes after. */
  readonly lastSeq: number | null
}

/** Only the fields the follower relies on; the caller may check the rest. */
const isTaskMessage = (m: Record<string, unknown>, id: number): m is TaskMessage & Record<string, unknown> =>
  (m.kind === 'snapshot' || m.kind === 'change') && m.task_id === id && typeof m.seq === 'number'

/**
 * Follows one task over ws(s)://…/ws/tasks/:id/. Each reconnect resumes with
 * ?after_seq= the last seq seen, so nothing is missed; anything at or below
 * it (a replay overlapping the live feed) is dropped, so nothing is seen
 * twice. It stops on close(), after a "deleted" message, or on 4401/4404.
 */
export function followTask(baseUrl: string, id: number, o: FollowOptions): TaskFollower {
  let lastSeq = o.afterSeq ?? null
  const base = socketUrl(baseUrl, `/ws/tasks/${id}/`)
  const socket = startFollower(
    o,
    () => (lastSeq === null ? base : `${base}?after_seq=${lastSeq}`),
    (m) => {
      if (!isTaskMessage(m, id) || (lastSeq !== null && m.seq <= lastSeq)) return
      lastSeq = m.seq
      o.onChange(m)
      if (m.kind === 'change' && m.deleted) socket.close()
    },
  )
  return {
    close: () => socket.close(),
    drop: (reason) => socket.drop(reason),
    get lastSeq() {
      return lastSeq
    },
  }
}
