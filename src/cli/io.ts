/** Where the CLI writes, and what it knows about the terminal; tests and the binary can pass their own. */
export interface CliIO {
  out(text: string): void
  err(text: string): void
  /** Resolves once everything written has reached the OS. */
  flush(): Promise<void>
  env: Record<string, string | undefined>
  /** stdout is a terminal: draw the progress bar instead of plain lines. */
  isTTY: boolean
  columns: number
  color: boolean
}

/**
 * The real process streams. Writes are queued through Bun.write and awaited
 * by flush(): process.stdout.write into a slow pipe is cut off by
 * process.exit (Bun 1.4 delivered only the first 64 KiB of a large list --json).
 */
export function processIO(): CliIO {
  let pending: Promise<unknown> = Promise.resolve()
  const queue = (sink: typeof Bun.stdout, text: string) => {
    pending = pending.then(() => Bun.write(sink, text)).catch(() => {}) // a closed pipe (| head) is not our error
  }
  const isTTY = Boolean(process.stdout.isTTY)
  return {
    out: (text) => queue(Bun.stdout, text),
    err: (text) => queue(Bun.stderr, text),
    flush: () => pending.then(() => {}),
    env: process.env,
    isTTY,
    // Read on every redraw: the terminal may be resized while a task runs.
    get columns() {
      return process.stdout.columns || 80
    },
    color: isTTY && !process.env.NO_COLOR && process.env.TERM !== 'dumb',
  }
}
