# syntax=docker/dockerfile:1
# Build stage: compiles TypeScript and native modules (better-sqlite3) against Node 20 on bookworm.
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY config ./config
RUN npm run build && npm prune --omit=dev

# Runtime: Node 20 on bookworm-slim with Debian's rtpengine, as a non-root user.
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends rtpengine-daemon tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/package.json ./package.json
COPY config ./config
COPY src/web ./src/web
RUN useradd --system --uid 10001 --home /var/lib/monologue monologue \
 && mkdir -p /var/lib/monologue && chown monologue /var/lib/monologue
USER monologue
ENV MONOLOGUE_DATA_DIR=/var/lib/monologue MONOLOGUE_HTTP__HOST=0.0.0.0 MONOLOGUE_SIP__LISTEN_ADDRESS=0.0.0.0
EXPOSE 8080 5060/udp 5060/tcp 30000-34999/udp
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/cli.js", "serve"]
