import { startApiServer } from './api/server'
import { runMain } from './main-runner'

await runMain('api', (config) => startApiServer(config))
