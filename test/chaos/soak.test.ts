import { soakSuite } from '../helpers/soak'

// The default (600 tasks at 15/s) takes about a minute.
soakSuite({ redisName: 'Redis', tasks: 600 })
