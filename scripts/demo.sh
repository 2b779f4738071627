#!/usr/bin/env bash
# The main job, end to end. Today: images made offline, listed, tagged, saved, loaded.
# It grows with each capability until it shows Build -> Ship -> Run.
set -euo pipefail
cd "$(dirname "$0")/.."
H=.venv/bin/hoist
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
work=$(mktemp -d /tmp/hoist-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

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

step "disk usage and a full consistency check of the store"
$H system df
$H system check

if [ -x /usr/bin/docker ] || command -v docker >/dev/null; then
    step "the real docker CLI against hoistd"
    DOCKER_HOST=unix:///run/hoist/hoist.sock docker images
fi
