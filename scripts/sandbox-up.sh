#!/usr/bin/env bash
# README command 1: install what is needed, boot the sandbox and converge it.
#   bash scripts/sandbox-up.sh [--topology single|fleet] [--distro bookworm|trixie]
# Defaults: one host, "titanaxe", on Debian 12. Tear down with: .venv/bin/python -m sandbox down
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
. .venv/bin/activate
python -m sandbox up "$@"
python -m sandbox.converge bootstrap
