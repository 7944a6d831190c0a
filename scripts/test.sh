#!/usr/bin/env bash
# README command 2: the whole test suite. For each distro: boot a sandbox, converge
# (root bootstrap, then as the deploy user), testinfra, a second converge that must
# change nothing, the secret-leak checks; the sandbox is torn down even on failure.
#   GALION_TEST_DISTROS="bookworm trixie" (default) picks the distros;
#   GALION_TEST_FLEET=bookworm (default) the distro of the fleet run ("" skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
. .venv/bin/activate

preparing=""
trap 'if [ -n "$preparing" ]; then kill -- "-$preparing" 2>/dev/null; fi; python -m sandbox down || true' EXIT

read -r -a distros <<< "${GALION_TEST_DISTROS:-bookworm trixie}"
# Each distro's base root file system (debootstrap, about a minute) is built in the
# background while something else runs: the first during the unit tests, each next one
# during the previous distro's first converge. `up` waits for it (and builds it itself
# if that failed).
prepare_log=$(mktemp)
prepare() {
    # Its own process group (setsid), so that the exit trap stops debootstrap too.
    setsid python -m sandbox prepare --distro "$1" >> "$prepare_log" 2>&1 &
    preparing=$!
}
prepared() {
    [ -n "$preparing" ] || return 0  # built already (the fleet's distro)
    wait "$preparing" || { echo "== building the base of $1 failed, retrying:" >&2; cat "$prepare_log" >&2; }
    preparing=""
}
prepare "${distros[0]}"

echo "== unit tests (no hosts), ruff and shellcheck" >&2
pytest -q tests/unit

# The split fleet, once, first (Debian 12, whose base is built during the unit tests): six
# hosts converged in one run, a second run that changes nothing, replication, the
# firewall between the hosts, the balancer losing an app host. GALION_TEST_FLEET=""
# skips it.
fleet_distro=${GALION_TEST_FLEET-bookworm}
if [ -n "$fleet_distro" ]; then
    echo "== fleet on $fleet_distro" >&2
    prepared "$fleet_distro"
    python -m sandbox up --topology fleet --distro "$fleet_distro"
    python -m sandbox.converge bootstrap
    pytest -q --durations=10 -W ignore::DeprecationWarning tests/fleet
    python -m sandbox down
fi

only_first=()
for i in "${!distros[@]}"; do
    distro=${distros[$i]}
    echo "== sandbox on $distro" >&2
    prepared "$distro"
    python -m sandbox up --distro "$distro"
    if (( i + 1 < ${#distros[@]} )); then prepare "${distros[$((i + 1))]}"; fi
    python -m sandbox.converge bootstrap
    pytest -q --durations=10 -W ignore::DeprecationWarning tests/roles
    # Tests marked "once" prove what no distro changes (pyinfra's output, the failure
    # paths of restores, restarts, certificates, image users): the first distro only.
    pytest -q --durations=25 tests/sandbox "${only_first[@]}"
    only_first=(-m "not once")
    python -m sandbox down
done
# `down` checks its own work; this proves it from the outside: no host, process,
# namespace, link, NAT rule or cgroup of the sandbox is left on the machine.
python -m sandbox leftovers
echo "== all green" >&2
