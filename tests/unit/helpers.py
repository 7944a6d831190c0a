"""What several unit test modules share: the real pyinfra CLI run in a subprocess, a
shell command checked for syntax."""

import subprocess
import sys
from pathlib import Path


def run_pyinfra(cwd: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    """`pyinfra -y ARGS` as an operator runs it, from `cwd`: output captured, 2 min at most."""
    return subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def is_valid_bash(command: str) -> bool:
    """`bash -n`: the command parses (nothing runs)."""
    return subprocess.run(["bash", "-n", "-c", command]).returncode == 0
