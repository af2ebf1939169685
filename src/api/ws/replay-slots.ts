/**
 * How many replays one owner may run at once on this instance; the rest wait
 * their turn holding nothing. A replay holds a page of history while its
 * client reads, and a client that stops reading holds it until the socket's
 * idle timeout, so without a bound one token's sockets could fill the API's
 * memory; per owner, so one tenant's stalled replays never delay another's.
 */
export class ReplaySlots {
  private readonly running = new Map<string, number>()
  private readonly waiting = new Map<string, (() => void)[]>()

  constructor(private readonly perOwner: number) {}

  /** Resolves with the function that gives the slot back, once one is free. */
  async acquire(owner: string): Promise<() => void> {
    if ((this.running.get(owner) ?? 0) >= this.perOwner) {
      await new Promise<void>((resolve) => {
        const queue = this.waiting.get(owner) ?? []
        queue.push(resolve)
        this.waiting.set(owner, queue)
      })
    } else {
      this.running.set(owner, (this.running.get(owner) ?? 0) + 1)
    }
    let released = false
    return () => {
      if (released) return
      released = true
      this.release(owner)
    }
  }

  /** Replays running for this owner (read by the tests of the bound). */
  inUse(owner: string): number {
    return this.running.get(owner) ?? 0
  }

  private release(owner: string) {
    const queue = this.waiting.get(owner)
    const next = queue?.shift()
    if (queue?.length === 0) this.waiting.delete(owner)
    // The slot passes straight to the next in line, so the count stays as it is.
    if (next) return next()
    const left = (this.running.get(owner) ?? 1) - 1
    if (left <= 0) this.running.delete(owner)
    else this.running.set(owner, left)
  }
}
