import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type pg from 'pg'
import { spawnChild } from './children'
import { machineBusySeconds } from './procfs'
import { createScratchTable } from './scratch-table'

/**
 * Reference (b): what Postgres itself does on this machine, through pgbench
 * (C, its own protocol loop), for the statements one task needs: the
 * three-statement lifecycle (INSERT, UPDATE, UPDATE) and a single INSERT (the
 * create path's floor). Each statement is its own transaction, as in Taskline.
 * The single INSERT runs first: it is the one a target is judged against.
 */
const table = 'bench_pgbench_tasks'

const scripts = {
  insert: `insert into ${table} (title, payload) values ('bench', '{"duration_ms":0}');
`,
  lifecycle: `insert into ${table} (title, payload) values ('bench', '{"duration_ms":0}') returning id \\gset
update ${table} set status = 'PROCESSING', updated_at = now() where id = :id;
update ${table} set status = 'COMPLETED', updated_at = now() where id = :id;
`,
}

function pgbenchPath(): string {
  const fixed = '/usr/lib/postgresql/15/bin/pgbench'
  return Bun.file(fixed).size > 0 ? fixed : (Bun.which('pgbench') ?? 'pgbench')
}

/** What one pgbench run did: transactions per second (connections excluded), and the CPU each cost. */
export interface PgbenchFigure {
  tps: number
  /**
   * Microseconds per transaction of pgbench's own CPU (its client) and of the
   * whole machine (its client, Postgres, anything else running), over the
   * whole run: the floor the create path's CPU per request stands beside.
   */
  cpuPerTxUs: { load: number; machine: number }
}

/** Runs each script given a number of clients for `seconds` (two threads each). */
export async function runPgbench(pool: pg.Pool, databaseUrl: string, seconds: number, clients: Partial<Record<keyof typeof scripts, number>>) {
  await createScratchTable(pool, table)
  const dir = mkdtempSync(join(tmpdir(), 'taskline-pgbench-'))
  const url = new URL(databaseUrl)
  try {
    const out: Partial<Record<keyof typeof scripts, PgbenchFigure>> = {}
    for (const [name, script] of Object.entries(scripts) as [keyof typeof scripts, string][]) {
      if (clients[name] === undefined) continue
      const file = join(dir, `${name}.sql`)
      writeFileSync(file, script)
      const run = async (secs: number) => {
        const args = [
          pgbenchPath(),
          '-n',
          '-c',
          String(clients[name]),
          '-j',
          '2',
          '-T',
          String(secs),
          '-f',
          file,
          '-h',
          url.hostname,
          '-p',
          url.port || '5432',
          '-U',
          decodeURIComponent(url.username || 'postgres'),
          url.pathname.slice(1),
        ]
        const child = spawnChild(`pgbench ${name}`, ['bash', '-c', `exec ${args.map((a) => `'${a}'`).join(' ')} 1>&2`], {
          PGPASSWORD: decodeURIComponent(url.password) || undefined,
        })
        const busyBefore = machineBusySeconds()
        const code = await child.exited
        const machine = machineBusySeconds() - busyBefore
        const load = Number(child.proc.resourceUsage()?.cpuTime.total ?? 0) / 1e6
        const done = Number(/actually processed: (\d+)/.exec(child.tail())?.[1] ?? 0)
        const perTx = (seconds: number) => (done > 0 ? Math.round((seconds * 1e6) / done) : 0)
        return { code, tps: /tps = ([\d.]+)/.exec(child.tail()), tail: child.tail(), cpuPerTxUs: { load: perTx(load), machine: perTx(machine) } }
      }
      let r = await run(seconds)
      // A busy machine can spend a short run's seconds opening its connections, with no transaction done: once more, longer.
      if (/actually processed: 0\b/.test(r.tail)) r = await run(seconds * 3)
      if (r.code !== 0 || !r.tps) throw new Error(`pgbench ${name} failed (${r.code}):\n${r.tail}`)
      out[name] = { tps: Number(r.tps[1]), cpuPerTxUs: r.cpuPerTxUs }
    }
    return out
  } finally {
    rmSync(dir, { recursive: true, force: true })
    await pool.query(`drop table if exists ${table}`)
  }
}
