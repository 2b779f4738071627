#!/usr/bin/env bash
# Idempotent set-up on Debian 12 as root: apt packages, .venv with hoist, the hoist and
# hoistd commands in /usr/local/bin, and the busybox base image. Quick when done.
#   scripts/setup.sh          what hoist needs to run
#   scripts/setup.sh --test   plus the peers the test suite compares against
#   scripts/setup.sh --bench  plus podman, the third engine bench/ measures
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

pkgs=(python3-venv python3-dev gcc busybox-static debootstrap iptables tini libseccomp2 runc)
case "${1:-}" in
    --test) pkgs+=(docker.io skopeo tmux docker-registry openssl) ;;
    --bench) pkgs+=(docker.io skopeo tmux podman docker-registry) ;;
esac
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
    echo "setup: installing hoist into .venv"
    if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -e ".[test]"; } \
            >.venv/pip.log 2>&1; then
        cat .venv/pip.log >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi
# The CLI runs isolated and without site (-I -S): it needs only the standard library,
# and skipping site and the editable-install finder saves ~25 ms on every command.
launcher=$(mktemp)
cat > "$launcher" <<LAUNCHER
#!$ROOT/.venv/bin/python3 -IS
import sys
sys.path.insert(0, "$ROOT")
from hoist.cli.main import run
run()
LAUNCHER
chmod 755 "$launcher"
if ! cmp -s "$launcher" /usr/local/bin/hoist; then
    rm -f /usr/local/bin/hoist
    mv "$launcher" /usr/local/bin/hoist
else
    rm -f "$launcher"
fi
ln -sf "$ROOT/.venv/bin/hoistd" /usr/local/bin/hoistd

# The base image every later step needs, made offline from Debian's busybox-static.
if ! /usr/local/bin/hoist image inspect busybox >/dev/null 2>&1; then
    /usr/local/bin/hoist image bootstrap busybox
fi
