import type { Context, Next } from 'hono'
import { errorBody } from '../error-handler'

/**
 * Refuses a WebSocket handshake of a version other than 13 (RFC 6455) before
 * anything else looks at it: Bun's upgrade() would answer such a request
 * itself, with an empty 426 instead of the API's error shape.
 */
export async function checkWebSocketVersion(c: Context, next: Next) {
  const version = c.req.header('sec-websocket-version')
  if (c.req.header('upgrade')?.toLowerCase() === 'websocket' && version !== '13') {
    const message = 'must be 13 (RFC 6455)'
    return c.json(errorBody('upgrade_required', `sec-websocket-version ${message}`, [{ path: 'sec-websocket-version', message }]), 426, {
      'Sec-WebSocket-Version': '13',
    })
  }
  await next()
}
