/** The table both reference loops write: a task row without our events, leases or outbox. */
export function createScratchTable(pool: { query(sql: string): Promise<unknown> }, name: string) {
  return pool.query(`create table if not exists ${name} (
    id bigint generated always as identity primary key,
    title text not null,
    payload jsonb not null default '{}',
    status text not null default 'PENDING',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
  )`)
}
