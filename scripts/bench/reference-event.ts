export type Status = 'PENDING' | 'PROCESSING' | 'COMPLETED'

/**
 * One message of reference (d): shaped like a change event, carrying when it
 * was due, and padded to `bytes` (the system's message of that status), so a
 * load process reads as much as it reads of the system's.
 */
export function eventMessage(status: Status, dueAt: number, bytes = 0): string {
  const message = `{"kind":"change","task_id":1,"owner_id":null,"seq":1,"status":"${status}","progress":0,"sent":${dueAt.toFixed(3)},"detail":null`
  const pad = bytes - message.length - ',"pad":""}'.length
  return pad > 0 ? `${message},"pad":"${'x'.repeat(pad)}"}` : `${message}}`
}
