import type { Context } from 'hono'
import { getConnInfo } from 'hono/bun'
import type { AppEnv } from './auth'

/**
 * The address of the TCP peer, never a client-sent header such as
 * X-Forwarded-For, which anyone can forge to dodge a per-address limit.
 * Behind a proxy this is the proxy's address. Read once per request and kept
 * on the context: the access log, the token throttle and the rate limit all
 * ask, and once Bun has upgraded a request to a socket its peer is gone.
 */
export function clientAddress(c: Context<AppEnv>): string {
  let address = c.get('address')
  if (address === undefined) {
    address = peerAddress(c)
    c.set('address', address)
  }
  return address
}

function peerAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown'
  } catch {
    return 'unknown' // app.request() in tests has no socket
  }
}
