/// <reference lib="dom" />
import { byId } from './dom'
import type { FeedState } from './feed'

const conn = byId('connection')
const connText = byId('connection-text')
let countdown: ReturnType<typeof setInterval> | undefined

/** The header's live indicator: the feed's state in a word, and a countdown while it waits to reconnect. */
export function showConnection(s: FeedState) {
  clearInterval(countdown)
  conn.dataset.state = s.kind
  const again = 'reconnects' in s && s.reconnects > 0 ? ` · reconnected ${s.reconnects}×` : ''
  if (s.kind === 'connecting') connText.textContent = 'Connecting…'
  else if (s.kind === 'connected') connText.textContent = `Live${again}`
  else if (s.kind === 'offline') connText.textContent = s.reason === 'unauthorized' ? 'Offline: token needed' : `Offline${again}`
  else {
    const tick = () => {
      const secs = Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000))
      connText.textContent = `Reconnecting in ${secs}s (attempt ${s.attempt})${again}`
    }
    tick()
    countdown = setInterval(tick, 1000)
  }
}
