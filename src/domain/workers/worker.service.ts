import type { Db } from '../../infra/db'
import { ForbiddenError } from '../errors'
import type { Principal } from '../tokens/token'
import { type Worker, workerRowToWorker } from './worker'
import * as repo from './worker.repository'

/** Every worker, live and recently gone: the fleet is everyone's, so only an admin sees it. */
export async function listWorkers(deps: { db: Db }, who: Principal): Promise<Worker[]> {
  if (!who.admin) throw new ForbiddenError('only an admin token may list workers')
  const now = Date.now()
  return (await repo.listWorkers(deps.db)).map((r) => workerRowToWorker(r, now))
}
