import type { Context } from 'hono'
import { getConnInfo } from 'hono/bun'

/**
 * The address of the TCP peer, never a client-sent header such as
 * X-Forwarded-For, which anyone can forge to dodge a per-address limit.
 * Behind a proxy this is the proxy's address.
 */
export function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown'
  } catch {
    return 'unknown' // app.request() in tests has no socket
  }
}
