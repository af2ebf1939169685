import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Cluster, Redis } from 'ioredis'
import { parseRedisUrl } from '../src/infra/redis'
import { eventually } from './helpers/poll'
import { keySlot, type RedisClusterServer, startRedisCluster } from './helpers/redis-cluster'

// The harness itself: a throwaway 3-master Redis Cluster whose nodes a chaos
// test may SIGKILL and start again empty, never the shared Redis on 6379.

let cluster: RedisClusterServer
/** Plain connections, one per node, to look at each node itself (not through the cluster client). */
let direct: Redis[] = []
beforeAll(async () => {
  cluster = await startRedisCluster()
  direct = cluster.ports.map((port) => new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null }))
  for (const r of direct) r.on('error', () => {})
}, 60_000)
afterAll(async () => {
  for (const r of direct) r.disconnect()
  await cluster?.destroy()
})

const slotsSeenBy = (node: number) => direct[node]!.cluster('SLOTS')
type SlotRange = Awaited<ReturnType<typeof slotsSeenBy>>[number]
/** The master of a range (there are no replicas): its port and node id. */
const master = (r: SlotRange) => ({ port: r[2]![1], id: r[2]![2] })
const state = async (node: number) => /^cluster_state:(\w+)/m.exec((await direct[node]!.cluster('INFO')) as string)?.[1]

/** A cluster client as Taskline makes one, from the harness URL; errors while a node is away are expected. */
function clusterClient(options: ConstructorParameters<typeof Cluster>[1] = {}): Cluster {
  const target = parseRedisUrl(cluster.url)
  if (target?.kind !== 'cluster') throw new Error(`not a cluster URL: ${cluster.url}`)
  const client = new Cluster(target.nodes, options)
  client.on('error', () => {})
  client.on('node error', () => {})
  return client
}

const refused = (port: number) =>
  Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } }).then(
    (s) => {
      s.end()
      return false
    },
    () => true,
  )

describe('startRedisCluster', () => {
  test('three masters cover all 16384 slots, and every node agrees', async () => {
    expect(cluster.ports).toHaveLength(3)
    expect(cluster.port).toBe(cluster.ports[0]!)
    expect(cluster.url).toBe(`redis+cluster://${cluster.ports.map((p) => `127.0.0.1:${p}`).join(',')}`)
    for (const p of cluster.ports) expect(p).toBeLessThan(55_000)

    const ids = await Promise.all(direct.map(async (r) => (await r.cluster('MYID')) as string))
    expect(new Set(ids).size).toBe(3)
    const ranges = await slotsSeenBy(0)
    // No replicas: each range has its master and nobody else.
    expect(ranges.every((r) => r.length === 3)).toBe(true)
    const covered = ranges.reduce((n, [first, last]) => n + last - first + 1, 0)
    expect(covered).toBe(16384)
    expect(new Set(ranges.map((r) => master(r).port))).toEqual(new Set(cluster.ports))
    for (let i = 0; i < 3; i++) {
      expect(await state(i)).toBe('ok')
      // The harness's own account of each node's slots matches what the cluster says.
      const own = ranges.filter((r) => master(r).id === ids[i]).map(([first, last]) => [first, last])
      expect(own.sort((a, b) => a[0]! - b[0]!)).toEqual(cluster.slots[i]!)
      // keyOn() gives a key that lives on that node.
      const slot = keySlot(cluster.keyOn(i))
      expect(cluster.slots[i]!.some(([first, last]) => slot >= first && slot <= last)).toBe(true)
    }
    const sorted = (r: SlotRange[]) => r.map((range) => `${range[0]}-${range[1]}@${master(range).port}/${master(range).id}`).sort()
    for (let i = 1; i < 3; i++) expect(sorted(await slotsSeenBy(i))).toEqual(sorted(ranges))
    expect(keySlot('foo')).toBe(12182)
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'))
  })

  test('a node SIGKILLed and started again rejoins with its slots, empty; a client made before the kill works again', async () => {
    const client = clusterClient()
    // Sharded pub/sub as Taskline uses it (cancel announcements): a channel on the node that goes away.
    const subscriber = clusterClient({ shardedSubscribers: true })
    const channel = cluster.keyOn(2, 'harness-channel:')
    const received: string[] = []
    subscriber.on('smessage', (ch: string, msg: string) => ch === channel && received.push(msg))
    try {
      const keys = [0, 1, 2].map((i) => cluster.keyOn(i, 'harness:'))
      for (const [i, key] of keys.entries()) await client.set(key, `v${i}`)
      // Each key really lives on its own node.
      for (const [i, key] of keys.entries()) expect(await direct[i]!.get(key)).toBe(`v${i}`)
      await subscriber.ssubscribe(channel)
      await eventually(async () => (await subscriber.spublish(channel, 'before')) && received.includes('before'), 10_000, 25, {
        what: 'the message before the kill',
      })

      const id = (await direct[2]!.cluster('MYID')) as string
      const nodesLine = (nodes: string) => nodes.split('\n').find((l) => l.startsWith(id))
      const before = nodesLine((await direct[0]!.cluster('NODES')) as string)!

      await cluster.stop(2)
      expect(await refused(cluster.ports[2]!)).toBe(true)
      expect(await refused(cluster.ports[2]! + 10_000)).toBe(true)

      const restart = performance.now()
      await cluster.start(2)
      const rejoined = performance.now() - restart

      // Same node (nodes.conf kept), same slots, seen so by every node; no data.
      expect(await direct[2]!.cluster('MYID')).toBe(id)
      expect(await direct[2]!.dbsize()).toBe(0)
      for (let i = 0; i < 3; i++) {
        expect(await state(i)).toBe('ok')
        const own = (await slotsSeenBy(i)).filter((r) => master(r).id === id).map(([first, last]) => [first, last])
        expect(own.sort((a, b) => a[0]! - b[0]!)).toEqual(cluster.slots[2]!)
      }
      const after = nodesLine((await direct[0]!.cluster('NODES')) as string)!
      // "<id> <addr> master - <ping> <pong> <epoch> connected <slots>": only the ping/pong times differ.
      const stable = (line: string) => line.split(' ').filter((_, i) => i !== 4 && i !== 5)
      expect(stable(after)).toEqual(stable(before))
      expect(after).toContain(' connected ')

      // The client created before the kill: its node's key is gone, the others' are still there, and it writes again.
      const recovered = await eventually(async () => (await client.set(keys[2]!, 'again')) === 'OK' && performance.now() - restart, 15_000, 25, {
        what: 'the cluster client to write to the restarted node',
      })
      expect(await client.get(keys[0]!)).toBe('v0')
      expect(await client.get(keys[1]!)).toBe('v1')
      expect(await direct[2]!.get(keys[2]!)).toBe('again')
      await client.del(keys[2]!)
      expect(await client.get(keys[2]!)).toBeNull()

      // The sharded subscriber subscribed again on the restarted node by itself.
      await eventually(async () => (await subscriber.spublish(channel, 'after')) && received.includes('after'), 15_000, 50, {
        what: 'a message after the restart',
      })
      console.log(`node rejoined ${Math.round(rejoined)} ms after start(); the client wrote to it ${Math.round(recovered)} ms after start()`)
      for (const key of keys) await client.del(key)
    } finally {
      client.disconnect()
      subscriber.disconnect()
    }
  }, 60_000)

  test('restartEmpty() of the default (last) node does the same', async () => {
    const key = cluster.keyOn(2, 'harness-default:')
    await direct[2]!.set(key, 'x')
    await cluster.restartEmpty()
    expect(await direct[2]!.exists(key)).toBe(0)
    for (let i = 0; i < 3; i++) expect(await state(i)).toBe('ok')
  }, 60_000)

  test('destroy() leaves no redis-server behind', async () => {
    const ports = cluster.ports
    for (const r of direct) r.disconnect()
    direct = []
    await cluster.destroy()
    for (const p of ports) {
      expect(await refused(p)).toBe(true)
      expect(await refused(p + 10_000)).toBe(true)
    }
    const ps = Bun.spawnSync(['ps', '-eo', 'args'], { stdout: 'pipe' }).stdout.toString()
    const ours = ps.split('\n').filter((l) => l.includes('redis-server') && ports.some((p) => l.includes(`:${p}`)))
    expect(ours).toEqual([])
  }, 30_000)
})
