#!/usr/bin/env bash
# README command 2: the whole test suite. For each distro: boot a sandbox, converge
# (root bootstrap, then as the deploy user), testinfra, a second converge that must
# change nothing, the secret-leak checks; the sandbox is torn down even on failure.
#   GALION_TEST_DISTROS="bookworm trixie" (default) picks the distros.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
. .venv/bin/activate

trap 'python -m sandbox down || true' EXIT

echo "== unit tests (no hosts), ruff and shellcheck" >&2
pytest -q tests/unit

only_first=()
for distro in ${GALION_TEST_DISTROS:-bookworm trixie}; do
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
# `down` checks its own work; this proves it from the outside: no host, process,
# namespace, link, NAT rule or cgroup of the sandbox is left on the machine.
python -m sandbox leftovers
echo "== all green" >&2
