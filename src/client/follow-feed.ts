import { type FollowerOptions, socketUrl, startFollower } from './follower'
import type { TaskEvent } from './types'

export interface FeedOptions extends FollowerOptions {
  /** Resume after this cursor (a change's `cursor`); without it the feed starts with a hello. */
  after?: number
  /** A start with nothing to resume from: the feed stands at cursor, and what the caller shows should be (re)loaded. */
  onHello?: (cursor: number) => void
  /** Every change of every task the token may see, in commit order. */
  onChange: (event: TaskEvent) => void
}

export interface FeedFollower {
  close(): void
  /** Gives up on the current socket (one that answers pings but has stopped delivering) and reconnects. */
  drop(reason: string): void
  /** Connects now with the backoff started over (a new token, the network back), resuming from cursor. */
  reconnect(): void
  /** The newest cursor seen, which the next connection resumes after; null before the first hello or change. */
  readonly cursor: number | null
}

const isChange = (m: Record<string, unknown>): m is TaskEvent & Record<string, unknown> =>
  m.kind === 'change' && typeof m.task_id === 'number' && typeof m.seq === 'number'

/**
 * Follows every task's changes over ws(s)://…/ws/tasks/ (an admin token sees
 * all tasks, any other token its own). Each reconnect resumes with ?after=
 * the newest cursor seen, and the API replays what happened meanwhile from
 * Postgres, so no change is missed. It stops on close() or on 4401.
 */
export function followFeed(baseUrl: string, o: FeedOptions): FeedFollower {
  let cursor = o.after ?? null
  const base = socketUrl(baseUrl, '/ws/tasks/')
  const socket = startFollower(
    o,
    () => (cursor === null ? base : `${base}?after=${cursor}`),
    (m) => {
      if (m.kind === 'hello' && typeof m.cursor === 'number') {
        cursor = m.cursor
        o.onHello?.(m.cursor)
      } else if (isChange(m)) {
        // Only a positive cursor names a place to resume from.
        if (m.cursor > 0 && (cursor === null || m.cursor > cursor)) cursor = m.cursor
        o.onChange(m)
      }
    },
  )
  return {
    close: () => socket.close(),
    drop: (reason) => socket.drop(reason),
    reconnect: () => socket.reconnect(),
    get cursor() {
      return cursor
    },
  }
}
