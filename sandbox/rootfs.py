"""Base root file systems: debootstrap once per distro, cache, copy per host."""

import secrets
import shutil
from pathlib import Path

from . import settings
from .shell import SandboxError, run, say

# Bump when the customisation below changes: cached bases with another stamp are rebuilt.
BASE_STAMP = "galion-sandbox-base v3"
PACKAGES = "systemd,systemd-sysv,dbus,openssh-server,python3,sudo,iproute2,ca-certificates"

# Inside an nspawn host the v1 controllers are mounted read-only; Docker needs them
# writable. Mounting each controller afresh inside the host's cgroup namespace shows
# only the host's own subtree (SANDBOX.md, point 4).
CGROUP_UNIT = """\
[Unit]
Description=Writable cgroup v1 controllers for the sandbox host (Docker needs them)
DefaultDependencies=no
Before=sysinit.target docker.service containerd.service
ConditionVirtualization=container

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for c in memory cpu cpuacct cpuset pids blkio devices freezer; do \
 if mountpoint -q /sys/fs/cgroup/$c; then umount /sys/fs/cgroup/$c; mkdir -p /sys/fs/cgroup/$c; \
 mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c; fi; done'

[Install]
WantedBy=sysinit.target
"""


def _sources(distro: str) -> str:
    mirror = settings.MIRROR.rstrip("/")
    security = mirror.rsplit("/", 1)[0] + "/debian-security"
    return (
        f"deb {mirror} {distro} main\n"
        f"deb {mirror} {distro}-updates main\n"
        f"deb {security} {distro}-security main\n"
    )


def _customise(root: Path, distro: str) -> None:
    (root / "etc/apt/sources.list").write_text(_sources(distro))
    systemd_dir = root / "etc/systemd/system"
    # No kernel modules can be loaded from a container; Debian 13 reports "degraded"
    # only because this unit fails.
    (systemd_dir / "systemd-modules-load.service").unlink(missing_ok=True)
    (systemd_dir / "systemd-modules-load.service").symlink_to("/dev/null")
    (systemd_dir / "sandbox-cgroup-v1.service").write_text(CGROUP_UNIT)
    wants = systemd_dir / "sysinit.target.wants"
    wants.mkdir(exist_ok=True)
    link = wants / "sandbox-cgroup-v1.service"
    link.unlink(missing_ok=True)
    link.symlink_to("/etc/systemd/system/sandbox-cgroup-v1.service")
    # Host keys are made per host at boot time; a cached copy must not share them.
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    (root / ".galion-sandbox-base").write_text(BASE_STAMP + "\n")


def base_path(distro: str) -> Path:
    return settings.CACHE_DIR / f"rootfs-{distro}"


def ensure_base(distro: str) -> Path:
    """Return the cached base root file system for a distro, building it if needed."""
    if distro not in settings.DISTROS:
        raise SandboxError(
            f"unknown distro {distro!r}; choose one of {', '.join(settings.DISTROS)}"
        )
    base = base_path(distro)
    stamp = base / ".galion-sandbox-base"
    if stamp.exists() and stamp.read_text().strip() == BASE_STAMP:
        return base
    settings.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    building = settings.CACHE_DIR / f"rootfs-{distro}.building"
    shutil.rmtree(building, ignore_errors=True)
    say(f"debootstrap {distro} (about a minute, cached afterwards)")
    run(
        "debootstrap",
        "--variant=minbase",
        f"--include={PACKAGES}",
        distro,
        str(building),
        settings.MIRROR,
    )
    _customise(building, distro)
    shutil.rmtree(base, ignore_errors=True)
    building.rename(base)
    return base


def make_host_root(
    distro: str, name: str, address: str, authorized_key: str, public_names: dict[str, str]
) -> Path:
    """Copy the base into a fresh root file system for one host and personalise it.
    `public_names` ({name: address}) stand in for public DNS: the apps' names resolve to
    the edge, as they do for real clients (the monitoring probes use them)."""
    base = ensure_base(distro)
    host_dir = settings.HOSTS_DIR / name
    root = host_dir / "rootfs"
    if root.exists():
        shutil.rmtree(root)
    host_dir.mkdir(parents=True, exist_ok=True)
    run("cp", "-a", "--reflink=auto", str(base), str(root))
    (root / "etc/hostname").write_text(name + "\n")
    (root / "etc/hosts").write_text(
        f"127.0.0.1 localhost\n{address} {name}\n::1 localhost ip6-localhost ip6-loopback\n"
        f"{settings.gateway_address()} s3.galion.test\n"
        + "".join(f"{a} {n}\n" for n, a in sorted(public_names.items()))
    )
    (root / "etc/machine-id").write_text(secrets.token_hex(16) + "\n")
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.write_text(Path("/etc/resolv.conf").read_text())
    keys = root / "root/.ssh/authorized_keys"
    keys.write_text(authorized_key.strip() + "\n")
    keys.chmod(0o600)
    run("chroot", str(root), "ssh-keygen", "-A")
    return root
