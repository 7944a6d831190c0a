"""Stand-ins for the programs a bash script of files/ runs, for its unit tests: small
shell scripts first on PATH (each logs its call to $STUB/calls), and beside them only
symlinks to the real programs the test allows, so that the test machine's own docker,
nginx, systemctl or PostgreSQL are never reached. The script is sourced (it runs `main`
only when executed) and its `main` called, optionally after functions of the test's own
(`before_main`: a seam such as the settings a host would have)."""

import shutil
import subprocess
from pathlib import Path


def install(root: Path, stubs: dict[str, str], tools: list[str], lib: str = "") -> None:
    """root/bin: the stand-ins (each sources root/stub/lib.sh first); root/tools: the
    allowed real programs; root/stub: where the stand-ins keep their state."""
    (root / "stub").mkdir(parents=True, exist_ok=True)
    (root / "stub" / "lib.sh").write_text(lib)
    for name in ("bin", "tools"):
        (root / name).mkdir()
    for name, body in stubs.items():
        path = root / "bin" / name
        path.write_text(f'#!/bin/bash\necho "{name} $*" >>"$STUB/calls"\n. "$STUB/lib.sh"\n{body}')
        path.chmod(0o755)
    for tool in tools:
        (root / "tools" / tool).symlink_to(shutil.which(tool))


def path(root: Path) -> str:
    return f"{root / 'bin'}:{root / 'tools'}"


def run(script: Path, args, env: dict, before_main: str = "", timeout: int = 60):
    """Source `script` in bash, then `before_main`, then call its main with `args`."""
    program = f'script=$1; shift; . "$script" || exit 99\n{before_main}\nmain "$@"'
    try:
        return subprocess.run(
            ["bash", "-c", program, "bash", str(script), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"no answer in {timeout}s") from e


def calls(root: Path) -> list[str]:
    log = root / "stub" / "calls"
    return log.read_text().splitlines() if log.exists() else []
