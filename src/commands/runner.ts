import { ConfigError, loadConfig, type Config } from '../config'

const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]

/** A setting that cannot work: one line naming it, and exit 2 (a supervisor should not restart into it). */
function badConfiguration(role: string, e: ConfigError): never {
  console.error(`taskline ${role}: ${e.message}`)
  process.exit(2)
}

/**
 * Starts a role and stops it cleanly on SIGINT/SIGTERM, even one that arrives
 * while it is still starting. A bad configuration or a failed start is one
 * line on stderr and a non-zero exit, never a stack trace.
 */
export async function runRole(role: string, start: (config: Config) => Promise<{ close(): Promise<void> }>) {
  let config: Config
  try {
    config = loadConfig()
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e
    badConfiguration(role, e)
  }
  let stopRequested = false
  let running: { close(): Promise<void> } | null = null
  const stop = async () => {
    stopRequested = true
    if (!running) return // start() is still under way; it checks stopRequested when done
    try {
      await running.close()
      process.exit(0)
    } catch (e) {
      console.error(`taskline ${role}: error while stopping: ${oneLine(e)}`)
      process.exit(1)
    }
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  try {
    running = await start(config)
  } catch (e) {
    // A setting found wrong only once a server answered (REDIS_URL's database) is still a bad configuration.
    if (e instanceof ConfigError) badConfiguration(role, e)
    console.error(`taskline ${role}: could not start: ${oneLine(e)}`)
    process.exit(1)
  }
  if (stopRequested) await stop()
}

/** What every entry point ends with: exit with the command's code, or keep running (a role exits on its own when signalled). */
export async function exitWith(code: Promise<number | undefined>): Promise<void> {
  const c = await code
  if (c !== undefined) process.exit(c)
}

/** Runs the API client CLI; the first Ctrl-C ends a watch tidily, a second one gets the default (kill), in case something hangs. */
export async function runClientCli(argv: string[]): Promise<number> {
  const { runCli } = await import('../cli/main')
  const controller = new AbortController()
  process.once('SIGINT', () => controller.abort())
  return runCli(argv, { signal: controller.signal })
}
