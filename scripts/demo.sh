#!/usr/bin/env bash
# The main job, end to end: images made offline, listed, tagged, saved and loaded;
# containers run; an image shipped through hoist's own registry and back.
# It grows with each capability until it shows Build -> Ship -> Run.
set -euo pipefail
cd "$(dirname "$0")/.."
H=.venv/bin/hoist
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
work=$(mktemp -d /tmp/hoist-demo.XXXXXX)
registry_pid=""
cleanup() {
    if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

step "hoist version (the CLI talks the Docker Engine API to hoistd, started on demand)"
$H version

step "an offline base image, made from Debian's busybox-static"
$H image inspect busybox >/dev/null 2>&1 || $H image bootstrap busybox
$H images busybox

step "import a filesystem tarball as an image, with Dockerfile-style changes"
mkdir -p "$work/rootfs/app"
echo "hello from hoist" > "$work/rootfs/app/hello.txt"
tar -C "$work/rootfs" -czf "$work/rootfs.tar.gz" .
$H import -c 'CMD ["cat", "/app/hello.txt"]' -c 'ENV GREETING=hi' -m "demo import" \
    "$work/rootfs.tar.gz" demo/hello:1.0
$H history demo/hello:1.0
$H image inspect --format '{{.Id}} cmd={{json .Config.Cmd}} env={{json .Config.Env}}' demo/hello:1.0

step "tag, list with a Go template, save and load back"
$H tag busybox demo/busybox:copy
$H images --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}'
$H save -o "$work/images.tar" busybox demo/hello:1.0
ls -lh "$work/images.tar"
$H rmi demo/hello:1.0 demo/busybox:copy
$H load -i "$work/images.tar"
$H images

step "run containers with Docker's isolation defaults (capabilities, namespaces, seccomp)"
$H run --rm busybox echo hello from a container
$H run --rm busybox sh -c 'echo "uid=$(id -u) hostname=$(hostname)"; grep CapEff /proc/self/status'
cid=$($H run -d --name demo-ticker busybox sh -c 'while true; do echo tick; sleep 0.2; done')
sleep 1
$H ps --filter name=demo-ticker --format '{{.Names}} {{.Status}}'
$H logs --tail 2 demo-ticker
$H exec demo-ticker sh -c 'echo "exec in $(hostname)"'
$H rm -f demo-ticker
echo "exit code of a failing container: $($H run --rm busybox sh -c 'exit 3' || echo $?)"

step "ship: push to hoist's own registry (127.0.0.1 only), remove, pull back"
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$H registry serve --addr "127.0.0.1:$port" --root "$work/registry" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do
    .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/')" \
        2>/dev/null && break
    sleep 0.1
done
ref="127.0.0.1:$port/demo/busybox:1"
$H tag busybox "$ref"
$H push "$ref"
$H rmi "$ref"
$H pull "$ref"
$H run --rm "$ref" echo "shipped and back: $ref"

step "disk usage and a full consistency check of the store"
$H system df
$H system check

if [ -x /usr/bin/docker ] || command -v docker >/dev/null; then
    step "the real docker CLI against hoistd"
    DOCKER_HOST=unix:///run/hoist/hoist.sock docker images
fi
