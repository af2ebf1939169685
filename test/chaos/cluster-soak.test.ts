import { soakSuite } from '../helpers/soak'

// The soak again on a Redis Cluster of three masters with the queue in three shards, one per master:
// the master killed mid-run comes back empty, as a server without persistence does. Shorter than
// the single-server soak, which covers the rest of the mix at length.
soakSuite({ redisName: 'a Redis Cluster master', tasks: 200, cluster: true, env: { JOB_SHARDS: 3 } })
