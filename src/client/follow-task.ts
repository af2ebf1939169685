import type { TaskEventMessage } from '../domain/task-events/task-event'
import type { Task } from '../domain/tasks/task'
import { ReconnectingSocket, type ReconnectingSocketOptions, type SocketState } from './reconnecting-socket'

/** The first message of a socket opened without after_seq: the task as it stands, with the fields a change also carries. */
export type TaskSnapshotMessage = { kind: 'snapshot'; task: Task } & Pick<TaskEventMessage, 'task_id' | 'status' | 'seq' | 'progress' | 'at'>

/** What a task's socket sends, besides pong: the snapshot, then the domain's own change messages. */
export type TaskMessage = TaskSnapshotMessage | TaskEventMessage

export interface FollowOptions extends Omit<ReconnectingSocketOptions, 'url' | 'onMessage' | 'backoff' | 'token'> {
  token?: string
  /** Resume after this seq (the task as last read over HTTP); without it the socket starts with a snapshot. */
  afterSeq?: number
  /** Each snapshot and change once, in seq order, across reconnects. */
  onChange: (message: TaskMessage) => void
  /** Every time a socket closes; reconnecting says whether another attempt follows. */
  onClose?: (info: { code: number; reason: string; reconnecting: boolean }) => void
  /** Backoff bounds in ms (defaults 250 and 10 000). */
  minDelayMs?: number
  maxDelayMs?: number
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
 * Follows one task over ws(s)://…/ws/tasks/:id/, keeping any path prefix of
 * baseUrl (a proxy's). Each reconnect resumes with ?after_seq= the last seq
 * seen, so nothing is missed; anything at or below it (a replay overlapping
 * the live feed) is dropped, so nothing is seen twice. It stops on close(),
 * after a "deleted" message, or on 4401/4404.
 */
export function followTask(baseUrl: string, id: number, o: FollowOptions): TaskFollower {
  let lastSeq = o.afterSeq ?? null
  const base = `${baseUrl.replace(/\/+$/, '').replace(/^http/, 'ws')}/ws/tasks/${id}/`
  const socket = new ReconnectingSocket({
    ...o,
    url: () => (lastSeq === null ? base : `${base}?after_seq=${lastSeq}`),
    backoff: { initialMs: o.minDelayMs ?? 250, maxMs: o.maxDelayMs ?? 10_000 },
    onMessage(m) {
      if (!isTaskMessage(m, id) || (lastSeq !== null && m.seq <= lastSeq)) return
      lastSeq = m.seq
      o.onChange(m)
      if (m.kind === 'change' && m.deleted) socket.close()
    },
    onState(s: SocketState) {
      o.onState?.(s)
      if (s.kind === 'waiting') o.onClose?.({ code: s.end.code, reason: s.end.reason, reconnecting: true })
      else if ((s.kind === 'stopped' || s.kind === 'paused') && s.end) o.onClose?.({ code: s.end.code, reason: s.end.reason, reconnecting: false })
    },
  })
  socket.start()
  return {
    close: () => socket.close(),
    drop: (reason) => socket.drop(reason),
    get lastSeq() {
      return lastSeq
    },
  }
}
