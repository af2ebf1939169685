/** `taskline queues ...`: list queues with their counts, pause or resume one. */
import { z } from 'zod'
import { UsageError } from './args'
import type { Client } from './client'
import { renderTable } from './format'
import type { CliIO } from './io'

/** What the CLI needs of a queue; loose, so a newer server's fields pass. */
export const queueSchema = z.looseObject({
  name: z.string(),
  paused: z.boolean(),
  ready: z.number(),
  waiting: z.number(),
  running: z.number(),
})
export type Queue = z.infer<typeof queueSchema>
export const queueListSchema = z.object({ results: z.array(queueSchema) })

export function renderQueueTable(queues: Queue[]): string {
  if (queues.length === 0) return 'no queues with active tasks'
  return renderTable(
    ['QUEUE', 'STATE', 'READY', 'WAITING', 'RUNNING'],
    queues.map((q) => [q.name, q.paused ? 'paused' : 'active', String(q.ready), String(q.waiting), String(q.running)]),
    ['left', 'left', 'right', 'right', 'right'],
  )
}

const actions = ['list', 'pause', 'resume'] as const

/** Runs one `queues` action; the positionals are what follows the word `queues`. */
export async function runQueues(positionals: string[], values: { json?: boolean }, io: CliIO, client: Client, printJson: (v: unknown) => void): Promise<void> {
  const [action = 'list', ...rest] = positionals
  const arity: Record<string, number> = { list: 0, pause: 1, resume: 1 }
  if (!Object.hasOwn(arity, action)) throw new UsageError(`queues: unknown action "${action}"; one of ${actions.join(', ')}`, 'queues')
  if (rest.length !== arity[action]) throw new UsageError(`queues ${action} takes ${arity[action]} argument(s), got ${rest.length}`, 'queues')
  if (action === 'list') {
    const list = await client.listQueues()
    if (values.json) printJson(list)
    else io.out(`${renderQueueTable(list.results)}\n`)
    return
  }
  const queue = action === 'pause' ? await client.pauseQueue(rest[0]!) : await client.resumeQueue(rest[0]!)
  if (values.json) printJson(queue)
  else io.out(`queue ${queue.name} ${queue.paused ? 'paused' : 'resumed'}: ${queue.ready} ready, ${queue.running} running\n`)
}
