"""Boot and stop systemd-nspawn hosts, each in its own netns and cgroup subtree."""

import os
import signal
import subprocess
import time
from pathlib import Path

from . import settings
from .shell import SandboxError, processes, quiet, run, say

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _controllers() -> list[Path]:
    return sorted(p for p in CGROUP_ROOT.iterdir() if p.is_dir())


def _cgroup_dirs(name: str) -> list[Path]:
    return [c / settings.PREFIX / name for c in _controllers()]


def _make_cgroups(name: str) -> None:
    # Without a subtree per host, every host's units share one cgroup and stopping a unit
    # in one host kills it in all of them (SANDBOX.md, point 3).
    cpuset = CGROUP_ROOT / "cpuset"
    if cpuset.exists():
        (cpuset / "cgroup.clone_children").write_text("1\n")
        (cpuset / settings.PREFIX).mkdir(exist_ok=True)
        (cpuset / settings.PREFIX / "cgroup.clone_children").write_text("1\n")
    for d in _cgroup_dirs(name):
        d.mkdir(parents=True, exist_ok=True)
    shares = CGROUP_ROOT / "cpu" / settings.PREFIX / "cpu.shares"
    if shares.exists():  # cgroup v1; elsewhere every sandbox gets an equal share
        shares.write_text(f"{settings.CPU_SHARES}\n")


def _cgroup_pids(path: Path) -> set[int]:
    pids: set[int] = set()
    if not path.exists():
        return pids
    for procs in path.rglob("cgroup.procs"):
        try:
            pids.update(int(p) for p in procs.read_text().split())
        except OSError:
            pass
    return pids


def _remove_cgroups(name: str) -> None:
    for d in _cgroup_dirs(name):
        if not d.exists():
            continue
        for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            try:
                sub.rmdir()
            except OSError:
                pass
        try:
            d.rmdir()
        except OSError:
            pass


def leftover_cgroup_hosts() -> set[str]:
    names = set()
    for c in _controllers():
        base = c / settings.PREFIX
        if base.is_dir():
            names.update(p.name for p in base.iterdir() if p.is_dir())
    return names


def boot(name: str, root: Path, netns: str, log: Path) -> int:
    _make_cgroups(name)
    procs = " ".join(str(d / "cgroup.procs") for d in _cgroup_dirs(name))
    nspawn = [
        "systemd-nspawn",
        "-D",
        str(root),
        "-b",
        "--register=no",
        "--keep-unit",
        f"--machine={name}",
        f"--network-namespace-path=/run/netns/{netns}",
        "--capability=all",
        "--system-call-filter=@keyring @privileged bpf",
        "--resolv-conf=off",
        "--timezone=off",
    ]
    script = f'for f in {procs}; do echo $$ > "$f"; done; exec "$@"'
    env = dict(os.environ, SYSTEMD_NSPAWN_API_VFS_WRITABLE="network")
    with open(log, "ab") as out, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            ["bash", "-c", script, "nspawn", *nspawn],
            stdin=devnull,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return proc.pid


def wait_ready(address: str, ssh_args: list[str], pid: int, log: Path) -> str:
    deadline = time.monotonic() + settings.BOOT_TIMEOUT
    state = ""
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise SandboxError(f"host at {address} exited while booting; see {log}")
        proc = run(
            "ssh",
            *ssh_args,
            f"root@{address}",
            "systemctl is-system-running",
            check=False,
            timeout=20,
        )
        state = (proc.stdout or "").strip()
        if state in ("running", "degraded"):
            return state
        time.sleep(1)
    raise SandboxError(
        f"host at {address} not ready after {settings.BOOT_TIMEOUT}s "
        f"(last state {state!r}); see {log}"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def nspawn_pids() -> dict[int, str]:
    """nspawn processes booting a root file system under our hosts directory."""
    found = {}
    marker = str(settings.HOSTS_DIR) + "/"
    for pid, cmd in processes():
        if cmd and cmd[0].endswith(b"systemd-nspawn"):
            for arg in cmd:
                if arg.decode(errors="replace").startswith(marker):
                    found[pid] = arg.decode(errors="replace")
    return found


def stop_all(names: set[str], grace: float = 90) -> None:
    """SIGTERM every nspawn of ours (a clean poweroff), then SIGKILL what is left."""
    pids = set(nspawn_pids())
    for pid in pids:
        quiet_kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = {p for p in pids if _alive(p)}
        time.sleep(0.5)
    for name in names:
        for d in _cgroup_dirs(name):
            for pid in _cgroup_pids(d):
                quiet_kill(pid, signal.SIGKILL)
    for pid in pids:
        quiet_kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    for name in names:
        _remove_cgroups(name)
        if any(d.exists() for d in _cgroup_dirs(name)):
            say(f"cgroups of {name} still busy; retrying once")
            time.sleep(2)
            _remove_cgroups(name)


def quiet_kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


__all__ = ["boot", "leftover_cgroup_hosts", "nspawn_pids", "quiet", "stop_all", "wait_ready"]
