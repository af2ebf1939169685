/**
 * A newcomer's first run: migrate, then the api and one worker side by side,
 * their logs interleaved in this terminal; Ctrl-C stops both cleanly. When
 * either role dies on its own, the other is stopped and dev exits non-zero:
 * an api without a worker would accept tasks that never run.
 */
const root = new URL('..', import.meta.url).pathname
const run = (file: string) => Bun.spawn(['bun', file], { cwd: root, stdio: ['inherit', 'inherit', 'inherit'], env: process.env })

const migrate = run('src/bin/migrate.ts')
if ((await migrate.exited) !== 0) {
  console.error('dev: migration failed; is Postgres running at DATABASE_URL?')
  process.exit(1)
}
// A first local run needs no token; the api prints a warning line saying so.
process.env.AUTH ??= 'off'
const roles = [
  { name: 'api', proc: run('src/bin/api.ts') },
  { name: 'worker', proc: run('src/bin/worker.ts') },
]
let stopping = false
const stop = () => {
  stopping = true
  for (const r of roles) r.proc.kill('SIGTERM')
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)

const first = await Promise.race(roles.map(async (role) => ({ role, code: await role.proc.exited })))
const died = !stopping
if (died) {
  // The role has already said why on stderr (its own "could not start: ..." line).
  const others = roles.filter((r) => r !== first.role).map((r) => r.name)
  console.error(`dev: the ${first.role.name} exited (code ${first.code}); stopping the ${others.join(' and ')}`)
  stop()
}
const codes = await Promise.all(roles.map((r) => r.proc.exited))
// A role that died on its own decides the code (at least 1, whatever it said), not the one dev stopped;
// on Ctrl-C a role killed by a signal has no exit code, a failure too, not a 0.
process.exit(died ? Math.max(first.code ?? 1, 1) : Math.max(...codes.map((c) => c ?? 1)))
