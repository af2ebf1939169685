/**
 * The WebSocket subprotocol a client offers beside its token: browsers cannot
 * set headers on a WebSocket, so the token rides in Sec-WebSocket-Protocol and
 * the server selects this name. The server's copy is
 * domain/tokens/socket-protocol.ts; types.test.ts holds the two equal.
 */
export const socketProtocol = 'taskline'

/** What to pass as `new WebSocket(url, protocols)`: the fixed name, then the token. */
export const socketProtocols = (token: string): string[] => [socketProtocol, token]
