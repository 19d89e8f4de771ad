# chjob: gRPC service running ClickHouse queries as export jobs.
#
#   docker build -t chjob .
#   docker run --rm -p 50051:50051 --env-file .env chjob
#
# With no ClickHouse DSN and no AWS_ENDPOINT the service runs embedded (chDB + its own S3 server),
# keeping its data in /data (CHJOB_DATA_DIR); mount a volume there to keep it.
#
# Node.js 24 (the recommended version: README "Node.js versions"). The image runs as the
# unprivileged user `node`, starts through the `chjob` launcher (dist/src/cli/launch.cjs, which
# sizes libuv's thread pool for chDB before anything else loads: chDB holds a pool thread per
# running export, and with node's default pool embedded exports can deadlock), and reports its
# health from the gRPC health service (`chjob health`).

# ---- build: every dependency (TypeScript among them), then compile ----
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# ---- runtime: production dependencies and the compiled code only ----
FROM node:24-slim AS runtime
ENV NODE_ENV=production \
    CHJOB_GRPC_ADDRESS=0.0.0.0:50051 \
    CHJOB_DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev keeps the optional dependencies: chDB (about 550 MB of it, the embedded ClickHouse),
# the embedded S3 server and PGlite (the embedded job store), so embedded mode works in the image.
# An image that only ever talks to a ClickHouse server, a real S3 and PostgreSQL
# (CHJOB_DATABASE_URL) can drop them: --build-arg NPM_OMIT="--omit=dev --omit=optional".
ARG NPM_OMIT="--omit=dev"
RUN npm ci ${NPM_OMIT} --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/gen ./dist/gen
COPY --from=build /app/proto ./proto
# `chjob` on the PATH (for `docker compose exec chjob chjob list` and the HEALTHCHECK) is the
# package's bin, the launcher itself (executable since `npm run build`; COPY keeps the mode).
RUN mkdir -p /data && chown node:node /data \
    && ln -s /app/dist/src/cli/launch.cjs /usr/local/bin/chjob
USER node
VOLUME ["/data"]
EXPOSE 50051
# grpc.health.v1 Check on this container's CHJOB_GRPC_ADDRESS (0.0.0.0 is dialled as 127.0.0.1),
# needing no token, over TLS when CHJOB_TLS_CERT is set: healthy only while the service answers
# SERVING (NOT_SERVING while it starts, drains, or cannot reach ClickHouse, S3 or the job store).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["chjob", "health", "--timeout", "3s"]
# Exec form: node is PID 1 and gets SIGTERM itself (drains for CHJOB_SHUTDOWN_GRACE, then exits 0).
CMD ["node", "dist/src/cli/launch.cjs", "serve"]
