import { ConfigError, loadConfig, type Config } from './config'

const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]

/**
 * Starts a role and stops it cleanly on SIGINT/SIGTERM, even one that arrives
 * while it is still starting. A bad configuration or a failed start is one
 * line on stderr and a non-zero exit, never a stack trace.
 */
export async function runMain(role: string, start: (config: Config) => Promise<{ close(): Promise<void> }>) {
  let config: Config
  try {
    config = loadConfig()
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e
    console.error(`taskline ${role}: ${e.message}`)
    process.exit(2)
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
    console.error(`taskline ${role}: could not start: ${oneLine(e)}`)
    process.exit(1)
  }
  if (stopRequested) await stop()
}
