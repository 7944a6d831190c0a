#!/usr/bin/env bash
# README command 2: the whole test suite. Boots sandboxes, converges them (root bootstrap,
# then as the deploy user), runs testinfra, converges again (0 changes), checks that no
# secret leaks; each sandbox is torn down, also on failure.
#   GALION_TEST_FLEET=trixie (default) the distro of the split fleet: every role's
#     testinfra checks on the hosts that carry it, what differs by distro (outside
#     scanners, Lynis), then tests/fleet ("" skips it);
#   GALION_TEST_DISTROS="bookworm" (default) the single-box distros: every role's checks
#     and every test of tests/sandbox; tests marked "once" run on the first one only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
. .venv/bin/activate

preparing=""
trap 'if [ -n "$preparing" ]; then kill -- "-$preparing" 2>/dev/null; fi; python -m sandbox down || true' EXIT

fleet_distro=${GALION_TEST_FLEET-trixie}
read -r -a distros <<< "${GALION_TEST_DISTROS:-bookworm}"
# Each distro's base root file system (debootstrap, about a minute) is built in the
# background while something else runs: the first during the unit tests, each next one
# during the previous sandbox's first converge. `up` waits for it (and builds it itself
# if that failed).
prepare_log=$(mktemp)
prepare() {
    # Its own process group (setsid), so that the exit trap stops debootstrap too.
    setsid python -m sandbox prepare --distro "$1" >> "$prepare_log" 2>&1 &
    preparing=$!
}
prepared() {
    [ -n "$preparing" ] || return 0
    wait "$preparing" || { echo "== building the base of $1 failed, retrying:" >&2; cat "$prepare_log" >&2; }
    preparing=""
}
prepare "${fleet_distro:-${distros[0]}}"

echo "== unit tests (no hosts), ruff and shellcheck" >&2
pytest -q tests/unit

# The split fleet, once, first: six hosts converged in one run; tests/roles on the hosts
# of each role (this distro's packages: PostgreSQL, Docker, nginx, exporters, ...); the
# outside scanners and Lynis (this distro's OpenSSL and OpenSSH), the secret file's only
# copy; then tests/fleet: a
# second run that changes nothing, replication, the firewall between the hosts, the
# balancer losing an app host, the failover and the rejoin (last: they swap the db hosts).
if [ -n "$fleet_distro" ]; then
    echo "== fleet on $fleet_distro" >&2
    prepared "$fleet_distro"
    python -m sandbox up --topology fleet --distro "$fleet_distro"
    if [ "${distros[0]:-}" != "$fleet_distro" ]; then prepare "${distros[0]}"; fi
    python -m sandbox.converge bootstrap
    pytest -q --durations=15 -W ignore::DeprecationWarning tests/roles \
        tests/sandbox/test_outside_scanners.py tests/sandbox/test_lynis.py \
        tests/sandbox/test_converge.py::test_secret_file_private_and_only_copy tests/fleet
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
