/**
 * The WebSocket subprotocol a client offers beside its token: browsers cannot
 * set headers on a WebSocket, so the token rides in Sec-WebSocket-Protocol.
 * The server (api/auth.ts, ws/socket.routes.ts) always selects this name, so
 * a 101 never echoes the token back; both sides read it from here.
 */
export const socketProtocol = 'taskline'

/** What to pass as `new WebSocket(url, protocols)`: the fixed name, then the token. */
export const socketProtocols = (token: string): string[] => [socketProtocol, token]
