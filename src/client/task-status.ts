// The server's own rules, from a file with no runtime imports, so a status cannot drift between server and clients.
export { canCancel, canRetry, isTerminal, taskStatuses, type TaskStatus } from '../domain/tasks/task-status'
