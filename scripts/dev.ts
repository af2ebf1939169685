/**
 * A newcomer's first run: migrate, then the api and one worker side by side,
 * their logs interleaved in this terminal; Ctrl-C stops both cleanly.
 */
const root = new URL('..', import.meta.url).pathname
const run = (file: string) =>
  Bun.spawn(['bun', file], { cwd: root, stdio: ['inherit', 'inherit', 'inherit'], env: process.env })

const migrate = run('scripts/migrate.ts')
if ((await migrate.exited) !== 0) {
  console.error('dev: migration failed; is Postgres running at DATABASE_URL?')
  process.exit(1)
}
// A first local run needs no token; the api prints a warning line saying so.
process.env.AUTH ??= 'off'
const roles = [run('src/main-api.ts'), run('src/main-worker.ts')]
const stop = () => {
  for (const p of roles) p.kill('SIGTERM')
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
const codes = await Promise.all(roles.map((p) => p.exited))
// A role killed by a signal has no exit code: that is a failure too, not a 0.
process.exit(Math.max(...codes.map((c) => c ?? 1)))
