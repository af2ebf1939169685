const pgConnectionCodes = new Set(['57P01', '57P02', '57P03', '53300'])
const socketCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'])

/** Names the backing service an error says is away ('database' or 'redis'), if any. */
export function isUnavailable(err: unknown): 'database' | 'redis' | null {
  if (!(err instanceof Error)) return null
  const code = (err as { code?: string }).code ?? ''
  const msg = err.message
  if (/redis|stream isn't writeable|enableOfflineQueue|Connection is closed/i.test(msg)) return 'redis'
  if (pgConnectionCodes.has(code) || code.startsWith('08') || socketCodes.has(code)) return 'database'
  if (/Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED|Client has encountered a connection error/i.test(msg)) {
    return 'database'
  }
  return null
}
