# syntax=docker/dockerfile:1
# Build stage: all dependencies, compile TypeScript, then drop the dev dependencies.
# Registry settings and CA certificates a build machine needs reach `npm ci` only as
# read-only mounts (see scripts/verify-container.sh); nothing here copies them in.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json nest-cli.json ./
COPY scripts ./scripts
COPY src ./src
# TypeScript survives the prune only as @nestjs/swagger's optional peer (its build-time
# plugin, unused at run time): removed by hand.
RUN npm run build && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/typescript node_modules/.bin/tsc node_modules/.bin/tsserver \
 && mkdir /app/data

# Runtime stage: production dependencies and the compiled service only, and no RUN (build
# mounts never touch it). The code stays owned by root (read-only to the service); only
# /data belongs to the non-root `node` user.
FROM node:24-bookworm-slim
# MALLOC_ARENA_MAX=2: glibc gives each thread that allocates its own malloc arena, and
# libvips' threads leave freed image memory scattered over them: peak memory during 61 MP
# publishes 614 -> 367 MB with two arenas, no slower (docs/benchmarks.md, "glibc's arenas").
ENV NODE_ENV=production \
    PORT=8000 \
    WORK_FOLDER=/data \
    MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build --chown=node:node /app/data /data
USER node
VOLUME ["/data"]
EXPOSE 8000
# Node's own fetch: the image needs no curl or wget.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/status').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Plain logs (NO_COLOR) unless stdout is a terminal; `exec` leaves node as the process
# that receives SIGTERM from `docker stop` (or from the init process with `init: true`).
CMD ["/bin/sh", "-c", "[ -t 1 ] || export NO_COLOR=1; exec node dist/main.js"]
