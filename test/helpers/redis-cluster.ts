import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import keySlot from 'cluster-key-slot'
import { Cluster, type ClusterOptions } from 'ioredis'
import { eventually } from './poll'
import { exitKills, freePort, type RedisServer, redisServerCommand, waitForPort, waitUntilClosed } from './throwaway'

/**
 * A throwaway Redis Cluster of our own (masters only, no replicas, no
 * persistence), a drop-in for startRedisServer()'s RedisServer: a chaos test
 * may SIGKILL a node and start it again empty. Never the shared Redis on 6379.
 *
 * cluster-require-full-coverage stays at its default, yes: while a master is
 * down (from the moment the others mark it FAIL, about 2 s after the kill)
 * every node answers CLUSTERDOWN, for every key, as a real cluster without
 * replicas does. It does not get in the way of a restart: the node comes back
 * with its nodes.conf (same id, same slots, same epoch), nobody took its slots
 * over (there is no replica), so the others clear its FAIL flag and the
 * cluster turns ok again, usually some 2 s after the restart (a restarted
 * master waits 2 s before it calls the cluster ok, and the others clear FAIL
 * at the earliest 2 node timeouts after setting it).
 */

export interface RedisClusterServer extends RedisServer {
  /** redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3 */
  url: string
  /** ports[0] */
  port: number
  /** One client port per node (the cluster bus of each is port + 10000). */
  ports: number[]
  /** Each node's slot ranges, [first, last] inclusive, as assigned at creation: they never move. */
  slots: [number, number][][]
  /** SIGKILL one node (default: the last one); it keeps its nodes.conf but no data (no persistence). Resolves when its port is closed. */
  stop(node?: number): Promise<void>
  /**
   * Starts that node again (default: the last one), empty, with its old nodes.conf so it rejoins with its slots;
   * resolves when every node reports cluster_state:ok, all agree on the slots as created, and each answers for
   * its own slots. With another node still stopped the cluster cannot be ok: it then resolves once the node listens.
   * A no-op for a node that is running.
   */
  start(node?: number): Promise<void>
  /** stop(node) then start(node): that master "restarted empty", as after a crash without persistence. */
  restartEmpty(node?: number): Promise<void>
  /** SIGKILL all, remove temp dirs. */
  destroy(): Promise<void>
  /** A key (prefix + a number) whose slot that node serves. */
  keyOn(node: number, prefix?: string): string
  /** A client of the cluster (errors while a node is away are left to each command). */
  client(options?: ClusterOptions): Cluster
  /** What a node says of the cluster: 'ok' or 'fail'. */
  state(node?: number): Promise<string>
}

/** Deadline of each wait on the cluster: CI machines are loaded, and a node's rejoin takes some 2 s even when idle. */
const WAIT_MS = 45_000

/** The slot Redis Cluster puts a key in: CRC16 of the key, or of its {hash tag}, mod 16384. */
export { default as keySlot } from 'cluster-key-slot'

function canListen(port: number): boolean {
  try {
    Bun.listen({ hostname: '127.0.0.1', port, socket: { data() {} } }).stop(true)
    return true
  } catch {
    return false
  }
}

/**
 * A client port P < 55000 with P and its cluster bus port P + 10000 both free.
 * Taken below the kernel's ephemeral range when there is room (as there is
 * with Linux's default 32768-60999), so that while a node is down no outgoing
 * connection (its peers retrying its bus, clients) can be handed its port by
 * the kernel and keep it from starting again; freePort() otherwise.
 */
async function clusterPort(taken: Set<number>): Promise<number> {
  let ephemeralLow = 32768
  try {
    ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || ephemeralLow
  } catch {}
  const low = 15_000
  const high = Math.min(ephemeralLow - 10_000, 55_000)
  for (let attempt = 0; attempt < 500; attempt++) {
    const p = high - low >= 500 ? low + Math.floor(Math.random() * (high - low)) : await freePort()
    if (p >= 55_000 || taken.has(p) || taken.has(p + 10_000) || taken.has(p - 10_000)) continue
    if (canListen(p) && canListen(p + 10_000)) return p
  }
  throw new Error('found no free port P < 55000 with P + 10000 free too')
}

/** One redis-cli command against a node; its stdout, trimmed. Throws if redis-cli fails (e.g. nobody listens). */
async function cli(port: number, ...args: string[]): Promise<string> {
  const proc = Bun.spawn(['redis-cli', '-h', '127.0.0.1', '-p', String(port), ...args], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', timeout: 10_000 })
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()])
  if (code !== 0) throw new Error(`redis-cli -p ${port} ${args.join(' ')} failed (exit ${code}): ${(err || out).trim()}`)
  return out.trim()
}

/** A node's CLUSTER SLOTS as sorted "first-last@port/id" lines (masters only: there are no replicas). */
async function slotView(port: number): Promise<string> {
  const out = await cli(port, '-2', '--json', 'cluster', 'slots')
  const ranges = JSON.parse(out) as [number, number, [string, number, string, ...unknown[]], ...unknown[]][]
  return ranges
    .map(([first, last, [, p, id]]) => `${first}-${last}@${p}/${id}`)
    .sort()
    .join(' ')
}

const logTail = (dir: string) => {
  const file = join(dir, 'redis.log')
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').slice(-5).join(' | ') : '(no log)'
}

/** A Redis Cluster of `masters` (at least 3, as redis-cli --cluster create wants) on random free ports, no replicas, no persistence. */
/**
 * fullCoverage false: the other masters keep serving their slots while one is
 * down (cluster-require-full-coverage no), so one shard can be away alone.
 */
export async function startRedisCluster(opts: { masters?: number; fullCoverage?: boolean } = {}): Promise<RedisClusterServer> {
  const masters = opts.masters ?? 3
  if (!Number.isInteger(masters) || masters < 3) throw new Error(`a Redis Cluster needs at least 3 masters (redis-cli --cluster create), not ${masters}`)
  const ports: number[] = []
  const taken = new Set<number>()
  for (let i = 0; i < masters; i++) {
    const p = await clusterPort(taken)
    taken.add(p)
    ports.push(p)
  }
  const dirs = ports.map(() => mkdtempSync(join(tmpdir(), 'taskline-rcluster-')))
  const procs: (Subprocess | null)[] = ports.map(() => null)
  // At exit, only signals and a best-effort removal of the dirs (a node still dying may write its nodes.conf).
  const kill = () => {
    for (const p of procs) p?.kill('SIGKILL')
    for (const dir of dirs) {
      try {
        rmSync(dir, { recursive: true, force: true })
      } catch {}
    }
  }
  exitKills.add(kill)

  // Filled in once the cluster is created: each node's id and slot ranges, and what CLUSTER SLOTS must say.
  let ids: string[] = []
  let slots: [number, number][][] = []
  let expectedView = ''
  let probes: string[] = []

  const nodeIndex = (node: number | undefined) => {
    const i = node ?? masters - 1
    if (!Number.isInteger(i) || i < 0 || i >= masters) throw new RangeError(`no node ${node}: this cluster has nodes 0..${masters - 1}`)
    return i
  }
  const running = (i: number) => procs[i] !== null && procs[i]!.exitCode === null && procs[i]!.signalCode === null

  async function spawnNode(i: number): Promise<void> {
    const port = ports[i]!
    const dir = dirs[i]!
    // Its own cwd and --dir: nodes.conf lives there and survives a kill (the data does not: nothing is saved).
    const proc = Bun.spawn(
      redisServerCommand(
        port,
        dir,
        ...['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '1000'],
        ...['--cluster-require-full-coverage', opts.fullCoverage === false ? 'no' : 'yes'],
        ...['--logfile', join(dir, 'redis.log')],
      ),
      { cwd: dir, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' },
    )
    procs[i] = proc
    const up = waitForPort(port, WAIT_MS).then(
      () => null,
      (e: Error) => e,
    )
    const outcome = await Promise.race([
      up,
      proc.exited.then((code) => new Error(`redis-server on ${port} exited (${code}) before listening: ${logTail(dir)}`)),
    ])
    if (outcome) throw outcome
  }

  async function stopNode(i: number): Promise<void> {
    const p = procs[i]
    if (!p) return
    procs[i] = null
    p.kill('SIGKILL')
    await p.exited
    await waitUntilClosed(ports[i]!, 10_000)
  }

  /** Throws what is not right yet; a node that died meanwhile ends the wait at once. */
  async function check(): Promise<true> {
    procs.forEach((p, i) => {
      if (!running(i)) throw new NodeDied(`node ${i} (port ${ports[i]}) is not running (exit ${p?.exitCode ?? 'stopped'}): ${logTail(dirs[i]!)}`)
    })
    const infos = await Promise.all(ports.map((p) => cli(p, 'cluster', 'info')))
    infos.forEach((info, i) => {
      if (!/^cluster_state:ok\s*$/m.test(info)) throw new Error(`node ${i} (port ${ports[i]}) says ${/^cluster_state:.*$/m.exec(info)?.[0] ?? info}`)
    })
    const views = await Promise.all(ports.map(slotView))
    views.forEach((view, i) => {
      if (view !== expectedView) throw new Error(`node ${i} (port ${ports[i]}) sees slots ${view}, not ${expectedView}`)
    })
    // A key in each node's own slots: a plain integer, not MOVED or CLUSTERDOWN.
    const answers = await Promise.all(ports.map((p, i) => cli(p, 'exists', probes[i]!)))
    answers.forEach((answer, i) => {
      if (answer !== '0' && answer !== '1') throw new Error(`node ${i} (port ${ports[i]}) answers "${answer}" for a key in its own slots`)
    })
    return true
  }
  const waitHealthy = (what: string) => eventually(check, WAIT_MS, 50, { what, fatal: (e) => e instanceof NodeDied })

  const keyOn = (node: number, prefix = 'k') => {
    const ranges = slots[nodeIndex(node)]!
    for (let n = 0; ; n++) {
      const key = `${prefix}${n}`
      const slot = keySlot(key)
      if (ranges.some(([first, last]) => slot >= first && slot <= last)) return key
    }
  }

  async function destroy(): Promise<void> {
    try {
      await Promise.all(ports.map((_, i) => stopNode(i)))
    } finally {
      exitKills.delete(kill)
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
    }
  }

  try {
    await Promise.all(ports.map((_, i) => spawnNode(i)))
    const create = Bun.spawn(['redis-cli', '--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
      timeout: WAIT_MS,
    })
    const [code, out, err] = await Promise.all([create.exited, new Response(create.stdout).text(), new Response(create.stderr).text()])
    if (code !== 0) throw new Error(`redis-cli --cluster create failed (exit ${code}): ${err || out}`)

    ids = await Promise.all(ports.map((p) => cli(p, 'cluster', 'myid')))
    // Each node's ranges as the first node saw them once redis-cli was done; check() then makes every node agree.
    const ranges = JSON.parse(await cli(ports[0]!, '-2', '--json', 'cluster', 'slots')) as [number, number, [string, number, string]][]
    slots = ids.map((id) =>
      ranges
        .filter(([, , [, , owner]]) => owner === id)
        .map(([first, last]): [number, number] => [first, last])
        .sort((a, b) => a[0] - b[0]),
    )
    const covered = slots.flat().reduce((n, [first, last]) => n + last - first + 1, 0)
    if (covered !== 16384 || slots.some((r) => r.length === 0)) throw new Error(`slots not spread over all ${masters} masters: ${JSON.stringify(slots)}`)
    expectedView = slots
      .flatMap((r, i) => r.map(([first, last]) => `${first}-${last}@${ports[i]}/${ids[i]}`))
      .sort()
      .join(' ')
    probes = ports.map((_, i) => keyOn(i, 'taskline-rcluster-probe:'))
    await waitHealthy(`a new ${masters}-master cluster on ${ports.join(',')} to be ok`)
  } catch (e) {
    await destroy().catch(() => {})
    throw e
  }

  const cluster: RedisClusterServer = {
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    port: ports[0]!,
    ports,
    slots,
    keyOn,
    client(options) {
      const client = new Cluster(
        ports.map((port) => ({ host: '127.0.0.1', port })),
        options,
      )
      client.on('error', () => {})
      return client
    },
    async state(node = 0) {
      return /cluster_state:(\w+)/.exec(await cli(ports[node]!, 'cluster', 'info'))?.[1] ?? 'unknown'
    },
    async stop(node) {
      await stopNode(nodeIndex(node))
    },
    async start(node) {
      const i = nodeIndex(node)
      if (running(i)) return
      await spawnNode(i)
      if (procs.every((_, j) => running(j))) await waitHealthy(`node ${i} (port ${ports[i]}) to rejoin the cluster with its slots`)
    },
    async restartEmpty(node) {
      await cluster.stop(node)
      await cluster.start(node)
    },
    destroy,
  }
  return cluster
}

class NodeDied extends Error {}
