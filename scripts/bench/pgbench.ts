import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type pg from 'pg'
import { spawnChild } from './children'
import { createScratchTable } from './scratch-table'

/**
 * Reference (b): what Postgres itself does on this machine, through pgbench
 * (C, its own protocol loop), for the statements one task needs: the
 * three-statement lifecycle (INSERT, UPDATE, UPDATE) and a single INSERT (the
 * create path's floor). Each statement is its own transaction, as in Taskline.
 */
const table = 'bench_pgbench_tasks'

const scripts = {
  lifecycle: `insert into ${table} (title, payload) values ('bench', '{"duration_ms":0}') returning id \\gset
update ${table} set status = 'PROCESSING', updated_at = now() where id = :id;
update ${table} set status = 'COMPLETED', updated_at = now() where id = :id;
`,
  insert: `insert into ${table} (title, payload) values ('bench', '{"duration_ms":0}');
`,
}

function pgbenchPath(): string {
  const fixed = '/usr/lib/postgresql/15/bin/pgbench'
  return Bun.file(fixed).size > 0 ? fixed : (Bun.which('pgbench') ?? 'pgbench')
}

export async function runPgbench(pool: pg.Pool, databaseUrl: string, seconds: number) {
  await createScratchTable(pool, table)
  const dir = mkdtempSync(join(tmpdir(), 'taskline-pgbench-'))
  const url = new URL(databaseUrl)
  try {
    const out: Record<keyof typeof scripts, number> = { lifecycle: 0, insert: 0 }
    for (const [name, script] of Object.entries(scripts) as [keyof typeof scripts, string][]) {
      const file = join(dir, `${name}.sql`)
      writeFileSync(file, script)
      const args = [
        pgbenchPath(),
        '-n',
        '-c',
        '16',
        '-j',
        '2',
        '-T',
        String(seconds),
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
      const code = await child.exited
      const tps = /tps = ([\d.]+)/.exec(child.tail())
      if (code !== 0 || !tps) throw new Error(`pgbench ${name} failed (${code}):\n${child.tail()}`)
      out[name] = Number(tps[1])
    }
    return out
  } finally {
    rmSync(dir, { recursive: true, force: true })
    await pool.query(`drop table if exists ${table}`)
  }
}
