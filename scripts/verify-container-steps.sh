#!/usr/bin/env bash
# No Docker engine runs on the development machines, so the image cannot be built here.
# This replays the Dockerfile's steps in a temp folder instead: the same files copied,
# `npm ci`, build, `npm prune --omit=dev`, then the runtime stage's content started as an
# unprivileged user with the image's environment, and its HEALTHCHECK command run.
# It shows that production dependencies suffice at runtime and that the healthcheck
# works; it cannot show the base image, the volume or `init: true` at work.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TMP="$(mktemp -d)"
PID=""
cleanup() {
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then kill "$PID"; wait "$PID" || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

BUILD="$TMP/build"; RUNTIME="$TMP/app"; DATA="$TMP/data"
mkdir -p "$BUILD" "$RUNTIME" "$DATA"
cp "$ROOT/package.json" "$ROOT/package-lock.json" "$ROOT/tsconfig.json" "$ROOT/nest-cli.json" "$BUILD/"
cp -r "$ROOT/scripts" "$ROOT/src" "$BUILD/"
(cd "$BUILD" && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent && npm prune --omit=dev --no-audit --no-fund --loglevel=error)
cp -r "$BUILD/package.json" "$BUILD/node_modules" "$BUILD/dist" "$RUNTIME/"
if [[ -d "$RUNTIME/node_modules/typescript" || -d "$RUNTIME/node_modules/vitest" ]]; then
  echo "verify-container: dev dependencies left in the runtime stage" >&2; exit 1
fi

PORT="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
RUN_AS=()
if [[ "$(id -u)" == "0" ]] && id nobody >/dev/null 2>&1; then
  chmod -R a+rX "$TMP"; chown nobody "$DATA"; RUN_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
(cd "$RUNTIME" && exec env -i PATH="$PATH" NODE_ENV=production PORT="$PORT" WORK_FOLDER="$DATA" NO_COLOR=1 \
  "${RUN_AS[@]}" node dist/main.js >"$TMP/out.log" 2>&1) &
PID=$!
for _ in $(seq 1 100); do
  if (cd "$RUNTIME" && PORT="$PORT" node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/status').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"); then
    echo "verify-container: HEALTHCHECK passes; runtime stage serves /status as $(stat -c %U "$DATA/data.json")"
    kill -TERM "$PID"; wait "$PID"; CODE=$?; PID=""
    echo "verify-container: SIGTERM -> exit code $CODE"
    [[ "$CODE" == "0" ]] && exit 0
    exit 1
  fi
  sleep 0.1
done
echo "verify-container: the runtime stage did not answer /status" >&2
cat "$TMP/out.log" >&2
exit 1
