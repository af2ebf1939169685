import { runMain } from './main-runner'
import { startWorker } from './worker/worker'

await runMain('worker', (config) => startWorker(config))
