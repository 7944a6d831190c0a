#!/usr/bin/env bash
# Install everything the sandbox and the tests need, on a fresh Debian 12 machine, as
# root: Debian packages, then a virtualenv (.venv) with the pinned Python packages.
# Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pair in debootstrap:debootstrap systemd-nspawn:systemd-container iptables:iptables \
            ssh:openssh-client ssh-keygen:openssh-client ip:iproute2 openssl:openssl \
            pebble:pebble pebble-challtestsrv:pebble wrk:wrk shellcheck:shellcheck \
            git:git; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair##*:}")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "install: apt-get install ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=.venv/.galion-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "install: pip install -e .[test] into .venv" >&2
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -e '.[test]'
    touch "$stamp"
fi

# promtool and amtool for the rule and route tests (tests/unit/test_monitoring.py): taken
# out of Debian's packages into .venv/bin, never installed as services on this machine.
if [ ! -x .venv/bin/promtool ] || [ ! -x .venv/bin/amtool ]; then
    echo "install: promtool and amtool from Debian's prometheus packages" >&2
    debs=$(mktemp -d)
    download() { (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root \
        prometheus prometheus-alertmanager >/dev/null); }
    download || { apt-get update -qq && download; }
    for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$debs/root"; done
    install -m 0755 "$debs/root/usr/bin/promtool" "$debs/root/usr/bin/amtool" .venv/bin/
    rm -rf "$debs"
fi
