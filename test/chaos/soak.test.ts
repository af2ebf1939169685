import { soakSuite } from '../helpers/soak'

// 400 tasks at the default 20/s: twenty seconds of posting, and the drain.
soakSuite({ redisName: 'Redis', tasks: 400 })
