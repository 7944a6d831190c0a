"""Run commands for the sandbox, loudly on failure."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


class SandboxError(RuntimeError):
    pass


def run(
    *args: str,
    check: bool = True,
    capture: bool = True,
    input: str | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        list(args),
        text=True,
        input=input,
        timeout=timeout,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
    )
    if check and proc.returncode != 0:
        err = (proc.stderr or "").strip() if capture else ""
        raise SandboxError(f"{' '.join(args)} exited {proc.returncode}: {err}")
    return proc


def quiet(*args: str) -> bool:
    """Run a command whose failure is expected sometimes (cleanup); report success."""
    return run(*args, check=False).returncode == 0


def say(message: str) -> None:
    print(f"sandbox: {message}", file=sys.stderr, flush=True)


def processes() -> Iterator[tuple[int, list[bytes]]]:
    """(pid, argv) of every process on the machine that is still there to be read."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        yield int(proc.name), [arg for arg in argv if arg]
