/**
 * A typed client for Taskline (`taskline/client`): every HTTP route as a
 * method of TasklineClient, and followTask / followFeed, which follow one
 * task or every task over a WebSocket and resume without a gap after any
 * disconnect. It imports nothing outside this folder (the API's shapes are
 * plain interfaces in types.ts), so it runs in Bun, Node 20+ and browsers and
 * its types stand alone. The CLI and the dashboard use its error, follower
 * and status modules too:
 *
 *   const taskline = new TasklineClient({ baseUrl: 'http://127.0.0.1:8000', token })
 *   const task = await taskline.createTask({ title: 'hello' })
 *   taskline.followTask(task.id, { onChange: (m) => console.log(m.status, m.progress) })
 */
import type { TasklineClient } from './taskline-client'
import type { ListTaskEventsQuery, TaskEvent } from './types'

export type * from './types'
export { TasklineClient, createClient, type ClientOptions, type FetchFunction, type RequestOptions } from './taskline-client'
export { ApiError, type ErrorDetail } from './api-error'
export { followTask, type FollowOptions, type TaskFollower } from './follow-task'
export { followFeed, type FeedFollower, type FeedOptions } from './follow-feed'
export type { FollowerOptions } from './follower'
export { eventPages, type EventPage } from './event-pages'
export { paramOfNext } from './next-link'
export {
  backoffDelay,
  finalCloseCodes,
  globalWebSocket,
  ReconnectingSocket,
  type Backoff,
  type ReconnectingSocketOptions,
  type SocketEnd,
  type SocketState,
  type WebSocketConstructor,
  type WebSocketLike,
} from './reconnecting-socket'
export { cancellableStatuses, canCancel, canRetry, isTerminal, retryableStatuses, taskStatuses, terminalStatuses } from './task-status'
export { socketProtocol, socketProtocols } from './socket-protocol'

/** client.taskEvents(id, query) as a function, as the client had it before TasklineClient. */
export function taskEvents(client: TasklineClient, id: number, query: ListTaskEventsQuery = {}): AsyncGenerator<TaskEvent> {
  return client.taskEvents(id, query)
}
