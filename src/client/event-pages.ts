import { paramOfNext } from './next-link'

/** A page of a task's history as GET /api/tasks/:id/events/ answers it. */
export interface EventPage<E = unknown> {
  results: E[]
  next: string | null
}

/**
 * A task's history a page at a time: reads the page after `afterSeq`, then
 * follows each page's `next` until it is null. The caller supplies the one
 * HTTP call, so the typed client, the CLI and the dashboard each keep their
 * own transport and errors but share this loop. It imports nothing Node- or
 * Bun-only, so the dashboard can bundle it.
 */
export async function* eventPages<P extends EventPage>(afterSeq: number, readPage: (afterSeq: number) => Promise<P>): AsyncGenerator<P> {
  for (let after: number | null = afterSeq; after !== null; ) {
    const page = await readPage(after)
    yield page
    const next = paramOfNext(page.next, 'after_seq')
    after = next === null ? null : Number(next)
  }
}
