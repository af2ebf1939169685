/** `taskline healthcheck`: for container healthchecks in images with no shell or curl. */
import { configSchema, ConfigError, loadConfig } from '../config'

export async function healthcheck(): Promise<number> {
  let settings: { HOST: string; PORT: number }
  try {
    settings = loadConfig(process.env, configSchema.pick({ HOST: true, PORT: true }))
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e
    console.error(`taskline healthcheck: ${e.message}`)
    return 2
  }
  const { HOST: host, PORT: port } = settings
  if (port === 0) {
    console.error('taskline healthcheck: PORT=0 lets the api pick a port; set the real one')
    return 2
  }
  // A wildcard bind is reached on loopback; 127.0.0.1, not localhost, which may resolve to ::1.
  const target = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host
  const url = `http://${target}:${port}/readyz`
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) })
    if (res.ok) return 0
    console.error(`taskline healthcheck: ${url} answered ${res.status}: ${(await res.text()).slice(0, 200)}`)
  } catch (e) {
    console.error(`taskline healthcheck: ${url}: ${e instanceof Error ? e.message : String(e)}`)
  }
  return 1
}
