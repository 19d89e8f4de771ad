# chjob: gRPC service running ClickHouse queries as export jobs.
#
#   docker build -t chjob .
#   docker run --rm -p 50051:50051 --env-file .env chjob
#
# With no ClickHouse DSN and no AWS_ENDPOINT the service runs embedded (chDB + its own S3 server),
# keeping its data in /data (CHJOB_DATA_DIR); mount a volume there to keep it.

# ---- build: install everything, compile TypeScript, then drop dev dependencies ----
FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build
# "--omit=dev --omit=optional" would also drop chDB (~550 MB) and the embedded S3 server, for an image
# that only ever talks to a ClickHouse server and a real S3; the default keeps embedded mode working.
ARG NPM_PRUNE_FLAGS="--omit=dev"
RUN npm prune ${NPM_PRUNE_FLAGS} --no-audit --no-fund

# ---- runtime ----
FROM node:22-slim AS runtime
ENV NODE_ENV=production \
    CHJOB_GRPC_ADDRESS=0.0.0.0:50051 \
    CHJOB_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/gen ./dist/gen
COPY --from=build /app/proto ./proto
# `chjob` on the PATH, for `docker compose exec chjob chjob list` and friends.
RUN mkdir -p /data && chown node:node /data \
    && printf '#!/bin/sh\nexec node /app/dist/src/cli/main.js "$@"\n' > /usr/local/bin/chjob \
    && chmod 755 /usr/local/bin/chjob
USER node
VOLUME ["/data"]
EXPOSE 50051
# A TCP check (works with or without TLS and a token); `chjob list` is the full gRPC round trip.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "require('net').connect(50051, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM itself (drains for CHJOB_SHUTDOWN_GRACE, then exits 0).
CMD ["node", "dist/src/cli/main.js", "serve"]
