#!/usr/bin/env bash
# make docker-test: build the image and prove it in a real Docker, end to end. Needs root and
# minutes; not part of `make test`.
#
# 1. Installs Debian's docker.io, debootstrap and docker-compose when missing, and starts a
#    dockerd when none answers (stopped again at the end). That dockerd runs with
#    --iptables=false --ip6tables=false so it never touches the host's firewall: containers
#    then have no NAT to the outside, so builds use --network host; containers on one compose
#    network still reach each other over the bridge, and published ports go through
#    docker-proxy on the host.
# 2. When debian:bookworm-slim can be neither found nor pulled (no registry reachable), builds it
#    with debootstrap from the host's Debian mirror, with the host's CA bundle and pip settings
#    so apt and pip inside the build reach the same mirrors through the same proxy.
# 3. Builds the image, runs it with host networking on a loopback address of its own
#    (127.0.0.77:1337: never 0.0.0.0:1337, which other test suites on the machine share), waits
#    for its HEALTHCHECK, updates it with smpmgr to 1.1.0, restarts it and checks the update
#    survived on the volume; then runs docker/compose.yaml (board + client, and the fleet
#    profile when the image has `smpsim fleet`).
# Prints PASS/FAIL per step and the figures measured; exits 1 at the first failure.
set -euo pipefail

cd "$(dirname "$0")/.."
ADDR=${SMPSIM_DOCKER_ADDR:-127.0.0.77}       # the host-network board
PUBLISH=${SMPSIM_COMPOSE_ADDR:-127.0.0.78}    # where compose publishes its board's port
BASE=debian:bookworm-slim
DOCKER=/usr/bin/docker
SMPMGR=(.venv/bin/smpmgr --ip "$ADDR" --timeout 5)
PY=.venv/bin/python
NAME=smpsim-docker-test                       # container, volume and compose project
COMPOSE=(docker-compose -f docker/compose.yaml -p "$NAME")
WORK=$(mktemp -d /tmp/smpsim-docker-test.XXXXXX)
DOCKERD_PID=""
STARTED_CONTAINER=""
STARTED_COMPOSE=""

log() { printf '%s\n' "$*"; }
pass() { log "PASS $*"; }
fail() {
    log "FAIL $1"
    [[ -n "${2:-}" && -s "$2" ]] && sed 's/^/    /' "$2" | tail -40
    exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Run "$@" into a log; PASS or FAIL (with the log's tail) under the step's name.
step() {
    local name=$1
    shift
    local out="$WORK/step.log"
    if "$@" >"$out" 2>&1; then pass "$name"; else fail "$name" "$out"; fi
}

cleanup() {
    local rc=$?
    set +e
    if [[ -n "$STARTED_COMPOSE" ]]; then
        "${COMPOSE[@]}" --profile fleet down --volumes --timeout 5 >/dev/null 2>&1
    fi
    if [[ -n "$STARTED_CONTAINER" ]]; then
        $DOCKER rm -f "$NAME" >/dev/null 2>&1
        $DOCKER volume rm "$NAME" >/dev/null 2>&1
    fi
    if [[ -n "$DOCKERD_PID" ]]; then
        kill "$DOCKERD_PID" 2>/dev/null
        wait "$DOCKERD_PID" 2>/dev/null
        log "stopped the dockerd this test started (pid $DOCKERD_PID)"
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

install_tools() {
    local need=()
    command -v dockerd >/dev/null && [[ -x $DOCKER ]] || need+=(docker.io)
    command -v debootstrap >/dev/null || need+=(debootstrap)
    command -v docker-compose >/dev/null || need+=(docker-compose)
    if ((${#need[@]})); then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
    fi
    log "tools: $($DOCKER --version); $(docker-compose --version)"
}

# Start dockerd with one storage driver; true once its socket answers.
start_dockerd() {
    dockerd --storage-driver="$1" --iptables=false --ip6tables=false \
        >>"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 120); do
        if $DOCKER info >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then break; fi
        sleep 0.5
    done
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
    DOCKERD_PID=""
    return 1
}

ensure_dockerd() {
    if $DOCKER info >/dev/null 2>&1; then
        log "using the dockerd already running"
        return 0
    fi
    if start_dockerd overlay2; then
        log "started dockerd (overlay2, no iptables), pid $DOCKERD_PID"
    elif start_dockerd vfs; then
        log "started dockerd (vfs: overlay2 failed, see below), pid $DOCKERD_PID"
        grep -i overlay "$WORK/dockerd.log" | tail -3 || true
    else
        fail "dockerd starts" "$WORK/dockerd.log"
    fi
}

# The Debian mirror the host's apt uses for bookworm (deb822 .sources, then sources.list).
apt_mirror() {
    local found=""
    shopt -s nullglob
    local sources=(/etc/apt/sources.list.d/*.sources)
    shopt -u nullglob
    if ((${#sources[@]})); then
        found=$(awk -v RS= '
            /(^|\n)Types:[^\n]*(^|[ \t])deb([ \t]|\n|$)/ &&
            /(^|\n)Suites:[^\n]*[ \t]bookworm([ \t]|\n|$)/ {
                n = split($0, lines, "\n")
                for (i = 1; i <= n; i++) if (lines[i] ~ /^URIs:/) {
                    split(lines[i], words, /[ \t]+/); print words[2]; exit
                }
            }' "${sources[@]}")
    fi
    if [[ -z "$found" && -f /etc/apt/sources.list ]]; then
        found=$(awk '$1 == "deb" {
                i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == "bookworm") { print $i; exit }
            }' /etc/apt/sources.list)
    fi
    printf '%s\n' "${found:-http://deb.debian.org/debian}"
}

# pip settings of the host that reach an index over the network (local paths are left out:
# they do not exist in the image), as a pip.conf.
host_pip_conf() {
    python3 - <<'EOF'
import os, subprocess
keep = {"index-url", "extra-index-url", "trusted-host", "cert", "timeout", "default-timeout"}
out = subprocess.run(["python3", "-m", "pip", "config", "list"], capture_output=True,
                     text=True, check=False).stdout
values = {}
for line in out.splitlines():
    key, _, value = line.partition("=")
    name = key.rpartition(".")[2]
    if name in keep:
        values[name] = value.strip().strip("'\"")
for name in ("index-url", "extra-index-url"):
    env = os.environ.get("PIP_" + name.upper().replace("-", "_"))
    if env:
        values[name] = env
urls = [u for u in values.get("extra-index-url", "").split() if u.startswith(("http:", "https:"))]
values.pop("extra-index-url", None)
if urls:
    values["extra-index-url"] = " ".join(urls)
if not values.get("index-url", "https:").startswith(("http:", "https:")):
    values.pop("index-url")
values["cert"] = "/etc/ssl/certs/ca-certificates.crt"
print("[global]")
for name, value in sorted(values.items()):
    print(f"{name} = {value}")
EOF
}

build_base() {
    local mirror rootfs="$WORK/rootfs"
    mirror=$(apt_mirror)
    log "building $BASE with debootstrap from $mirror"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
        fail "debootstrap bookworm" "$WORK/debootstrap.log"
    # The host's CA bundle: HTTPS through a re-signing proxy then verifies inside the build.
    mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/usr/local/share/ca-certificates"
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/local/share/ca-certificates/host.crt"
    host_pip_conf >"$rootfs/etc/pip.conf"
    log "pip.conf of the base: $(tr '\n' ' ' <"$rootfs/etc/pip.conf")"
    # Slim as the registry's image: no manuals, documentation or translations (dpkg leaves
    # them out of later installs too; copyright files stay).
    printf 'path-exclude /usr/share/%s/*\n' doc man info locale \
        >"$rootfs/etc/dpkg/dpkg.cfg.d/slim"
    printf 'path-include /usr/share/doc/*/copyright\n' >>"$rootfs/etc/dpkg/dpkg.cfg.d/slim"
    find "${rootfs:?}/usr/share/doc" -type f ! -name copyright -delete
    rm -rf "${rootfs:?}"/usr/share/{man,info,locale}/* "${rootfs:?}"/var/cache/apt/*.bin \
        "${rootfs:?}"/var/cache/apt/archives/*.deb "${rootfs:?}"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | $DOCKER import - "$BASE" >/dev/null
    rm -rf "${rootfs:?}"
}

ensure_base() {
    if $DOCKER image inspect "$BASE" >/dev/null 2>&1; then
        log "base image $BASE: already here"
    elif $DOCKER pull "$BASE" >"$WORK/pull.log" 2>&1; then
        log "base image $BASE: pulled"
    else
        log "base image $BASE: no registry ($(tail -1 "$WORK/pull.log"))"
        local t0
        t0=$(now)
        build_base
        pass "base image built with debootstrap and imported in $(since "$t0") s"
    fi
}

# CPU seconds the board (PID 1 of container $1) has used so far.
cpu_seconds() {
    $DOCKER exec "$1" cat /proc/1/stat |
        awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }'
}

health() { $DOCKER inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null || echo gone; }

# Wait until container $1 reports healthy; prints the seconds it took from $2.
wait_healthy() {
    for _ in $(seq 300); do
        case $(health "$1") in
            healthy) since "$2"; return 0 ;;
            gone) return 1 ;;
        esac
        sleep 0.5
    done
    return 1
}

slots() { "${SMPMGR[@]}" image state-read | $PY docker/smpmgr_slots.py slots; }

# Wait until the board answers an echo again (it is silent while MCUboot swaps).
wait_answers() {
    for _ in $(seq 300); do
        if python3 docker/smp_probe.py --timeout 1 "$1:1337" 2>/dev/null; then return 0; fi
        sleep 0.5
    done
    return 1
}

install_tools
ensure_dockerd
ensure_base

t0=$(now)
step "docker build (docker/Dockerfile)" \
    $DOCKER build --network host -f docker/Dockerfile -t smpsim .
BUILD_S=$(since "$t0")
t0=$(now)
step "docker build (docker/client.Dockerfile)" \
    $DOCKER build --network host -f docker/client.Dockerfile -t smpsim-client .
CLIENT_BUILD_S=$(since "$t0")
SIZE=$($DOCKER image inspect -f '{{.Size}}' smpsim)
BASE_SIZE=$($DOCKER image inspect -f '{{.Size}}' "$BASE")
CLIENT_SIZE=$($DOCKER image inspect -f '{{.Size}}' smpsim-client)

# The image's own settings, as built.
config=$($DOCKER image inspect -f \
    '{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.ExposedPorts}}' smpsim)
[[ $config == '10001:10001 ["smpsim"] {"1337/udp":{}}' ]] || fail "image config: $config"
pass "image config: user 10001, entrypoint smpsim, 1337/udp exposed"

# The board on the host's network, on an address of its own, its flash on a named volume.
$DOCKER rm -f "$NAME" >/dev/null 2>&1 || true
$DOCKER volume rm "$NAME" >/dev/null 2>&1 || true
STARTED_CONTAINER=1
t0=$(now)
step "docker run (host network, $ADDR:1337)" \
    $DOCKER run -d --name "$NAME" --network host -e SMP_PROBE="$ADDR:1337" \
    -v "$NAME:/data" smpsim run --udp "$ADDR:1337" --flash /data/flash-nrf52840dk.bin
HEALTHY_S=$(wait_healthy "$NAME" "$t0") || {
    $DOCKER logs "$NAME" >"$WORK/board.log" 2>&1
    fail "HEALTHCHECK reports healthy" "$WORK/board.log"
}
pass "HEALTHCHECK reports healthy after $HEALTHY_S s"
[[ $($DOCKER exec "$NAME" id -u) == 10001 ]] || fail "the board runs as uid 10001"
pass "the board runs as uid 10001 (not root)"

# A full update with smpmgr, as the README's walk-through.
HASH=$($PY docker/smpmgr_slots.py hash flash_images/app-1.1.0.bin)
CPU0=$(cpu_seconds "$NAME")
t0=$(now)
step "smpmgr image upload app-1.1.0.bin" "${SMPMGR[@]}" image upload flash_images/app-1.1.0.bin
slots >"$WORK/slots"
grep -q "^slot=1 version=1.1.0 hash=$HASH flags=$" "$WORK/slots" ||
    fail "state-read: slot 1 holds 1.1.0" "$WORK/slots"
pass "state-read: slot 1 holds 1.1.0"
step "smpmgr image state-write (test)" "${SMPMGR[@]}" image state-write "$HASH"
slots >"$WORK/slots"
grep -q "^slot=1 version=1.1.0 .*flags=pending" "$WORK/slots" ||
    fail "state-read: slot 1 pending" "$WORK/slots"
pass "state-read: slot 1 pending"
step "smpmgr os reset" "${SMPMGR[@]}" os reset
sleep 1  # the board answers for 250 ms after the reset's answer, then goes silent to boot
t1=$(now)
wait_answers "$ADDR" || fail "the board answers again after the swap"
pass "the board answers again after the swap ($(since "$t1") s)"
slots >"$WORK/slots"
grep -q "^slot=0 version=1.1.0 hash=$HASH flags=active$" "$WORK/slots" ||
    fail "state-read: 1.1.0 active, not confirmed" "$WORK/slots"
pass "state-read: 1.1.0 active, not confirmed"
step "smpmgr image state-write --confirm" "${SMPMGR[@]}" image state-write --confirm
slots >"$WORK/slots"
grep -q "^slot=0 version=1.1.0 .*flags=confirmed,active$" "$WORK/slots" ||
    fail "state-read: 1.1.0 confirmed" "$WORK/slots"
UPDATE_S=$(since "$t0")
UPDATE_CPU=$(awk -v a="$CPU0" -v b="$(cpu_seconds "$NAME")" 'BEGIN { printf "%.2f", b - a }')
pass "state-read: 1.1.0 active and confirmed (update took $UPDATE_S s)"

# The flash lives on the volume: a restarted container boots 1.1.0.
t0=$(now)
step "docker restart" $DOCKER restart "$NAME"
RESTART_S=$(wait_healthy "$NAME" "$t0") || fail "healthy after the restart"
slots >"$WORK/slots"
grep -q "^slot=0 version=1.1.0 .*flags=confirmed,active$" "$WORK/slots" ||
    fail "after the restart, 1.1.0 still runs" "$WORK/slots"
pass "after the restart (healthy in $RESTART_S s), 1.1.0 still runs: the flash is on the volume"
BOARD_MEM=$($DOCKER stats --no-stream --format '{{.MemUsage}}' "$NAME" | cut -d/ -f1)
BOARD_RSS=$($DOCKER exec "$NAME" grep VmRSS /proc/1/status | tr -s ' \t' ' ' | cut -d' ' -f2-)
IDLE_CPU0=$(cpu_seconds "$NAME")
sleep 10
IDLE_CPU=$(awk -v a="$IDLE_CPU0" -v b="$(cpu_seconds "$NAME")" 'BEGIN { printf "%.2f", b - a }')
$DOCKER rm -f "$NAME" >/dev/null
$DOCKER volume rm "$NAME" >/dev/null
STARTED_CONTAINER=""

# docker/compose.yaml: the board (default command, read-only, port published on $PUBLISH),
# and the client reaching it by service name over the compose network.
STARTED_COMPOSE=1
export SMPSIM_PUBLISH="$PUBLISH:1337"
"${COMPOSE[@]}" --profile fleet down --volumes >/dev/null 2>&1 || true
step "docker-compose up board" "${COMPOSE[@]}" up -d --no-build board
board=$("${COMPOSE[@]}" ps -q board)
wait_healthy "$board" "$(now)" >/dev/null || {
    "${COMPOSE[@]}" logs board >"$WORK/board.log" 2>&1
    fail "compose board healthy" "$WORK/board.log"
}
pass "compose board healthy (default command: 0.0.0.0:1337 and [::]:1337)"
"${COMPOSE[@]}" run --rm client >"$WORK/client.log" 2>&1 ||
    fail "compose client: smpmgr --ip board os echo, image state-read" "$WORK/client.log"
if ! grep -q "hello" "$WORK/client.log" || ! grep -q "version='1.0.0'" "$WORK/client.log"; then
    fail "compose client: smpmgr --ip board os echo, image state-read" "$WORK/client.log"
fi
pass "compose client: smpmgr --ip board os echo, image state-read (by service name)"
step "host smpmgr through the published port $PUBLISH:1337" \
    .venv/bin/smpmgr --ip "$PUBLISH" --timeout 5 os echo published
if $DOCKER run --rm smpsim fleet --help >/dev/null 2>&1; then
    step "docker-compose --profile fleet up fleet" "${COMPOSE[@]}" --profile fleet up -d fleet
    fleet=$("${COMPOSE[@]}" --profile fleet ps -q fleet)
    wait_healthy "$fleet" "$(now)" >/dev/null || {
        "${COMPOSE[@]}" --profile fleet logs fleet >"$WORK/fleet.log" 2>&1
        fail "compose fleet healthy" "$WORK/fleet.log"
    }
    step "compose fleet: all 4 boards answer" $DOCKER exec "$fleet" smp-probe \
        127.0.0.1:1337 127.0.0.1:1338 127.0.0.1:1339 127.0.0.1:1340
else
    log "NOT RUN fleet profile: this image's smpsim has no fleet command yet"
fi
"${COMPOSE[@]}" --profile fleet down --volumes --timeout 5 >/dev/null 2>&1
STARTED_COMPOSE=""
pass "docker-compose down"

log ""
log "image smpsim: $((SIZE / 1000000)) MB (base $((BASE_SIZE / 1000000)) MB), built in" \
    "$BUILD_S s; smpsim-client: $((CLIENT_SIZE / 1000000)) MB, built in $CLIENT_BUILD_S s"
log "time to healthy: $HEALTHY_S s (after a restart: $RESTART_S s)"
log "update 1.0.0 -> 1.1.0 (upload, test, reset and swap, confirm): $UPDATE_S s," \
    "$UPDATE_CPU CPU s in the board"
log "one board's container: memory $BOARD_MEM (docker stats), RSS $BOARD_RSS;" \
    "idle CPU $IDLE_CPU s in 10 s"
log "docker-test: all steps passed"
