import type { Serve, Server } from 'bun'

/**
 * Bun.serve, except that a port already in use is refused and reported by the
 * setting that chose it. Bun sets SO_REUSEPORT by default, so a second
 * Taskline on the same port would bind beside the first and share its
 * traffic without a word; and Bun's own "Is port 9464 in use?" does not say
 * which of a process's settings to change.
 */
export function serveOn<WebSocketData = undefined>(setting: string, options: Serve.Options<WebSocketData>): Server<WebSocketData> {
  try {
    return Bun.serve({ reusePort: false, ...options } as Serve.Options<WebSocketData>)
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'EADDRINUSE') throw e
    const { port, hostname } = options as { port?: unknown; hostname?: unknown }
    throw new Error(
      `${setting}=${port}: port ${port} on ${hostname ?? 'every address'} is already in use; stop what holds it or set ${setting} to a free port`,
      { cause: e },
    )
  }
}
