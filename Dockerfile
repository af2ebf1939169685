# One image for every role: `taskline api` is the default command; compose runs
# `taskline worker` and `taskline migrate` from the same image, and a small host
# can run everything in one container with `taskline all`.

# Build stage: the same Bun minor as CI (`npm install -g bun@1.4`), so the
# lockfile and the compiler agree. Only this stage has Bun, node_modules and sources.
FROM oven/bun:1.4 AS build
WORKDIR /app

# Dependencies first, so editing src/ does not invalidate the install layer.
# --frozen-lockfile fails the build instead of silently resolving new versions;
# the bundler needs only the runtime dependencies.
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile --production

# db/ is read at build time: the migrations are embedded (src/infra/migrations.macro.ts).
COPY tsconfig.json ./
COPY src ./src
COPY db ./db
RUN bun run build

# What a handler module mounted at /handlers imports ('taskline' and zod),
# found at /node_modules in the runtime image, so the file needs no install
# of its own (a mounted project with its own node_modules takes precedence).
COPY index.ts ./
COPY scripts/handler-deps.ts ./scripts/
RUN bun scripts/handler-deps.ts /opt/handler-deps

# Runtime stage: the binary carries the Bun runtime, the code, the dashboard and
# the migrations, and links only glibc (libc, libm, libdl, libpthread: see
# `ldd dist/taskline`), so distroless base is enough: no shell, no package
# manager, no curl (the healthcheck is `taskline healthcheck`). Beside it,
# only /node_modules for mounted handler modules.
FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /app/dist/taskline /usr/local/bin/taskline
COPY --from=build /opt/handler-deps/node_modules /node_modules

# The image's unprivileged user (uid 65532); the binary only reads itself.
USER nonroot

EXPOSE 8000
# Your own task types: mount the handler module and name it, e.g.
#   docker run -v ./tasks.ts:/handlers/tasks.ts:ro -e HANDLERS=/handlers/tasks.ts IMAGE taskline worker
# Exec form: taskline is PID 1 and receives SIGTERM itself, so `docker stop`
# gets the clean shutdown src/commands/runner.ts implements.
CMD ["taskline", "api"]
