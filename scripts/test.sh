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

# The split fleet runs in a sandbox of its own (its own name prefix, subnet and state
# directory) at the same time as the single box: each leaves about half the two cores
# idle while its tests wait on timers, drains and alerts. (Both at the same CPU share:
# with the fleet's hosts at half, GALION_SANDBOX_CPU_SHARES=512, the run took 32.5 min
# instead of 38, but the fleet's failover failed once: a race between the hosts' plans,
# fixed since; docs/TESTING.md, "What runs where".)
fleet_env=(GALION_SANDBOX_PREFIX=gsfl GALION_SANDBOX_SUBNET=10.78.0.0/24
    GALION_SANDBOX_DIR=/var/lib/galion-fleet-sandbox)
fleet_distro=${GALION_TEST_FLEET-trixie}
read -r -a distros <<< "${GALION_TEST_DISTROS:-bookworm}"
fleet_log=$(mktemp)
fleet_job=""
background=()
cleanup() {
    for pid in "${background[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
    if [ -n "$fleet_job" ]; then
        # Stopped early (the single box failed, or the run was interrupted): what the
        # fleet had done so far, since its log is in a temporary file.
        wait "$fleet_job" 2>/dev/null || true
        echo "== fleet on $fleet_distro (stopped before its end); its output so far:" >&2
        cat "$fleet_log" >&2
    fi
    python -m sandbox down || true
    env "${fleet_env[@]}" python -m sandbox down || true
}
trap cleanup EXIT

# Each distro's base root file system (debootstrap, about a minute) is built in the
# background during the unit tests; every later `up` copies it.
prepare_log=$(mktemp)
for distro in $(printf '%s\n' "$fleet_distro" "${distros[@]}" | sort -u); do
    # Its own process group (setsid), so that the exit trap stops debootstrap too.
    setsid python -m sandbox prepare --distro "$distro" >> "$prepare_log" 2>&1 &
    background+=($!)
done

echo "== unit tests (no hosts), ruff and shellcheck" >&2
pytest -q tests/unit
for pid in "${background[@]}"; do
    wait "$pid" || { echo "== building a base failed (up builds it again):" >&2; cat "$prepare_log" >&2; }
done
background=()

# The split fleet, once: six hosts converged in one run; tests/roles on the hosts of
# each role (this distro's packages: PostgreSQL, Docker, nginx, exporters, ...); the
# outside scanners and Lynis (this distro's OpenSSL and OpenSSH), the secret file's only
# copy; then tests/fleet: a second run that changes nothing, replication, the firewall
# between the hosts, the balancer losing an app host, the failover and the rejoin (last:
# they swap the db hosts). Its output is printed when it ends.
fleet() {
    export "${fleet_env[@]}"
    python -m sandbox up --topology fleet --distro "$fleet_distro"
    python -m sandbox.converge bootstrap
    pytest -q -p no:cacheprovider --durations=15 -W ignore::DeprecationWarning tests/roles \
        tests/sandbox/test_outside_scanners.py tests/sandbox/test_lynis.py \
        tests/sandbox/test_converge.py::test_secret_file_private_and_only_copy tests/fleet
    python -m sandbox down
}
if [ -n "$fleet_distro" ]; then
    echo "== fleet on $fleet_distro (in the background; its output follows when it ends)" >&2
    setsid bash -c "$(declare -f fleet); $(declare -p fleet_env fleet_distro); set -euo pipefail; fleet" \
        > "$fleet_log" 2>&1 &
    fleet_job=$!
    background+=("$fleet_job")
fi

only_first=()
for distro in "${distros[@]}"; do
    echo "== sandbox on $distro" >&2
    python -m sandbox up --distro "$distro"
    python -m sandbox.converge bootstrap
    pytest -q --durations=10 -W ignore::DeprecationWarning tests/roles
    # Tests marked "once" prove what no distro changes (pyinfra's output, the failure
    # paths of restores, restarts, certificates, image users): the first distro only.
    pytest -q --durations=25 tests/sandbox "${only_first[@]}"
    only_first=(-m "not once")
    python -m sandbox down
done

if [ -n "$fleet_job" ]; then
    fleet_rc=0
    wait "$fleet_job" || fleet_rc=$?
    fleet_job=""
    background=()
    echo "== fleet on $fleet_distro (exit $fleet_rc):" >&2
    cat "$fleet_log"
    [ "$fleet_rc" = 0 ] || exit "$fleet_rc"
fi
# `down` checks its own work; this proves it from the outside: no host, process,
# namespace, link, NAT rule or cgroup of either sandbox is left on the machine.
python -m sandbox leftovers
env "${fleet_env[@]}" python -m sandbox leftovers
echo "== all green" >&2
