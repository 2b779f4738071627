#!/usr/bin/env bash
# Idempotent set-up on Debian 12 as root: apt packages, .venv with hoist, the hoist and
# hoistd commands in /usr/local/bin, and the busybox base image. Quick when done.
#   scripts/setup.sh          what hoist needs to run
#   scripts/setup.sh --test   plus the peers the test suite compares against
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

pkgs=(python3-venv python3-dev gcc busybox-static debootstrap iptables)
if [ "${1:-}" = "--test" ]; then
    pkgs+=(docker.io skopeo tmux)
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    /usr/bin/python3 -m venv .venv
fi
stamp=.venv/.hoist-setup
want=$(cat pyproject.toml | sha256sum | cut -c1-64)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -e ".[test]"
    echo "$want" > "$stamp"
fi
ln -sf "$ROOT/.venv/bin/hoist" /usr/local/bin/hoist
ln -sf "$ROOT/.venv/bin/hoistd" /usr/local/bin/hoistd

# The base image every later step needs, made offline from Debian's busybox-static.
if ! .venv/bin/hoist image inspect busybox >/dev/null 2>&1; then
    .venv/bin/hoist image bootstrap busybox
fi
