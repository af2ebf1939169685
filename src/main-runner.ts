import { ConfigError, loadConfig, type Config } from './config'

/**
 * Starts a role and stops it cleanly on SIGINT/SIGTERM. A bad configuration is
 * one line on stderr and exit code 2, never a stack trace.
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
  const running = await start(config)
  const stop = async () => {
    await running.close()
    process.exit(0)
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
