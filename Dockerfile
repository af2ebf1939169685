# One image for every role: the api is the default command, compose runs the
# worker and the migrations from the same image with another command.
# Same minor as CI (`npm install -g bun@1.4`), so the lockfile and runtime agree.
FROM oven/bun:1.4

WORKDIR /app
ENV NODE_ENV=production

# Dependencies first, so editing src/ does not invalidate the install layer.
# --frozen-lockfile fails the build instead of silently resolving new versions.
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile --production

COPY tsconfig.json ./
COPY src ./src
COPY db ./db
COPY scripts ./scripts

# The official image ships an unprivileged `bun` user; the app only reads /app.
USER bun

EXPOSE 8000
# Exec form: bun is PID 1 and receives SIGTERM itself, so `docker stop` gets
# the clean shutdown src/main-runner.ts implements.
CMD ["bun", "src/main-api.ts"]
