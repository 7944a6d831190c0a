"""Host hardening beyond SSH and the firewall, on every host (dev-sec os_hardening's
concerns that apply to a server of this kind), each behind its own knob: login.defs,
core dumps, kernel modules nobody needs, login banners, process accounting, private
temp directories, needrestart, idle shells, password quality, and the pending security
updates on a fresh box. Lynis' hardening index of a converged host is printed by the
test command; the suggestions declined are listed in README.md."""

import re
import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Mounts
from pyinfra.operations import apt, files, server

from galion.facts.files import PathExists
from galion.facts.system import ToolModes
from galion.ops import config_file, render, sysctl_values
from galion.role import Knob, Role
from galion.validators import int_between, matches, says

# Written once the first run applied the pending security updates.
SECURITY_UPGRADED_MARKER = "/var/lib/galion/first-security-upgrade-done"
MODULE_NAME = re.compile(r"^[a-z0-9_-]+$")

_MODULE_LIST = says("is not a list of kernel module names")(
    lambda v: isinstance(v, list) and all(matches(MODULE_NAME)(m) for m in v)
)

KNOBS = {
    # 027 keeps other users out. The deploy user's sudo keeps 022, so converged files
    # keep the modes the code gives them.
    "os_hardening_login_umask": Knob(
        "027",
        "umask login.defs gives new home directories and PAM sessions (pam_umask).",
        check=matches(re.compile(r"^0?[0-7]{3}$")),
        problem="is not an octal umask",
        fix="use {default} (or '022' to keep Debian's)",
    ),
    "os_hardening_sha_crypt_rounds": Knob(
        65536,
        "SHA-512 rounds for local passwords (login.defs; the deploy user has none).",
        check=int_between(5000, 10_000_000),
    ),
    "os_hardening_core_dumps_off": Knob(
        True, "No core dumps: they can hold secrets (limits, systemd, systemd-coredump)."
    ),
    "os_hardening_blacklisted_filesystems": Knob(
        ["cramfs", "freevxfs", "jffs2", "hfs", "hfsplus"],
        "Filesystems this server never mounts (not squashfs: snaps; not udf/vfat: cloud "
        "provisioning media and EFI).",
        check=_MODULE_LIST,
        fix="use {default}, or [] for none",
    ),
    "os_hardening_blacklisted_storage": Knob(
        ["usb-storage", "firewire-core", "firewire-ohci"],
        "Removable storage drivers: a rented server has no use for them.",
        check=_MODULE_LIST,
        fix="use {default}, or [] for none",
    ),
    "os_hardening_blacklisted_protocols": Knob(
        ["dccp", "sctp", "rds", "tipc"],
        "Network protocols with a history of kernel bugs and no use here.",
        check=_MODULE_LIST,
        fix="use {default}, or [] for none",
    ),
    "os_hardening_login_banner": Knob(
        "Authorized access only. Activity on this system is logged and monitored; "
        "unauthorized use is prohibited and may be prosecuted.",
        'Shown before local and network logins (/etc/issue, /etc/issue.net); "" = leave them.',
        check=lambda v: isinstance(v, str) and "\\" not in v,
        problem="is not plain text (no backslashes: getty expands them)",
        fix="write a sentence or two",
    ),
    "os_hardening_process_accounting": Knob(
        True, "Process accounting (acct: lastcomm, sa), a record of every command run."
    ),
    "os_hardening_pam_tmpdir": Knob(
        True, "libpam-tmpdir: a private TMPDIR (/tmp/user/<uid>) per login session."
    ),
    # A restart of PostgreSQL is the operator's call.
    "os_hardening_needrestart": Knob(
        True,
        "needrestart lists services that run old libraries after upgrades; it never "
        "restarts them itself.",
    ),
    "os_hardening_shell_idle_timeout": Knob(
        900,
        "Idle interactive shells end after this many seconds (TMOUT); 0 = never.",
        check=int_between(0, 86400),
        problem="is not between 0 and 86400 seconds",
        fix="use {default}, or 0 for no timeout",
    ),
    "os_hardening_password_quality": Knob(
        True, "pam_pwquality for the few local passwords there are (none for the deploy user)."
    ),
    "os_hardening_debsums": Knob(
        True,
        "debsums: verify installed package files against their checksums, weekly (mailed).",
    ),
    # Exploits are often built on the box they attack; dpkg-statoverride keeps the mode
    # across upgrades.
    "os_hardening_root_only_tools": Knob(
        ["as", "cc", "gcc", "g++", "c++", "clang"], "Compilers and assemblers only root may run."
    ),
    "os_hardening_dev_shm_noexec": Knob(
        True, "/dev/shm without exec, setuid or devices (shared memory needs none of them)."
    ),
    "os_hardening_log_martians": Knob(
        True, "Log packets with impossible source addresses (UFW's sysctl.conf turns this off)."
    ),
    # It never stops an apt run to page them.
    "os_hardening_apt_listchanges": Knob(
        True,
        "apt-listchanges mails the NEWS of upgraded packages to root (the operator, through "
        "the mail relay).",
    ),
    # Later ones leave it to the daily timer.
    "os_hardening_first_run_security_upgrades": Knob(
        True,
        "The first converge of a fresh box installs the pending security updates "
        "(unattended-upgrade, security origins only).",
    ),
}

ROLE = Role(groups=(), order=15, knob_prefixes=("os_hardening_",))


def modprobe_lines(filesystems, storage, protocols) -> list[str]:
    """`install X /bin/false` (loading fails, even as a dependency) plus `blacklist X`."""
    return [
        line
        for module in [*filesystems, *storage, *protocols]
        for line in (f"install {module} /bin/false", f"blacklist {module}")
    ]


def _login_defs():
    data = host.data
    for key, value in (
        ("UMASK", data.os_hardening_login_umask),
        ("SHA_CRYPT_MIN_ROUNDS", data.os_hardening_sha_crypt_rounds),
        ("SHA_CRYPT_MAX_ROUNDS", data.os_hardening_sha_crypt_rounds),
    ):
        files.line(
            name=f"login.defs: {key} {value}",
            path="/etc/login.defs",
            line=rf"^{key}[[:space:]].*$",
            replace=f"{key}\t\t{value}",
        )


def _core_dumps():
    if not host.data.os_hardening_core_dumps_off:
        return
    config_file(
        name="No core dumps: limits",
        dest="/etc/security/limits.d/90-galion-no-core-dumps.conf",
        content="# Managed by galion-infra (operations/os_hardening.py).\n"
        # root too: Debian 13's limits.d/10-coredump-debian.conf gives root an unlimited
        # hard limit, and a user's own line beats the `*` one.
        "* hard core 0\n* soft core 0\nroot hard core 0\nroot soft core 0\n",
    )
    config_file(
        name="No core dumps: login shells",
        dest="/etc/profile.d/galion-no-core-dumps.sh",
        content="# Managed by galion-infra (operations/os_hardening.py).\nulimit -c 0\n",
    )
    files.directory(name="systemd drop-in directory", path="/etc/systemd/system.conf.d")
    config_file(
        name="No core dumps: services started by systemd",
        dest="/etc/systemd/system.conf.d/90-galion-no-core-dumps.conf",
        content="# Managed by galion-infra (operations/os_hardening.py).\n"
        "[Manager]\nDefaultLimitCORE=0\n",
    )
    files.directory(name="systemd-coredump drop-in directory", path="/etc/systemd/coredump.conf.d")
    config_file(
        name="No core dumps: systemd-coredump (if installed) keeps none",
        dest="/etc/systemd/coredump.conf.d/90-galion-no-core-dumps.conf",
        content="# Managed by galion-infra (operations/os_hardening.py).\n"
        "[Coredump]\nStorage=none\nProcessSizeMax=0\n",
    )


def _kernel_modules():
    data = host.data
    lines = modprobe_lines(
        data.os_hardening_blacklisted_filesystems,
        data.os_hardening_blacklisted_storage,
        data.os_hardening_blacklisted_protocols,
    )
    config_file(
        name="Kernel modules nobody here needs (filesystems, removable storage, protocols)",
        dest="/etc/modprobe.d/galion-blacklist.conf",
        content="# Managed by galion-infra (operations/os_hardening.py).\n"
        + "".join(f"{line}\n" for line in lines),
    )


def _banners():
    banner = host.data.os_hardening_login_banner
    if not banner:
        return
    for path in ("/etc/issue", "/etc/issue.net"):
        config_file(name=f"Login banner {path}", dest=path, content=banner.strip() + "\n")


def _packages():
    data = host.data
    wanted = [
        package
        for package, knob in (
            ("acct", data.os_hardening_process_accounting),
            ("libpam-tmpdir", data.os_hardening_pam_tmpdir),
            ("needrestart", data.os_hardening_needrestart),
            ("libpam-pwquality", data.os_hardening_password_quality),
            ("debsums", data.os_hardening_debsums),
            ("apt-listchanges", data.os_hardening_apt_listchanges),
        )
        if knob
    ]
    if data.os_hardening_needrestart:
        # Before the package: its first run (apt's hook) must already only list.
        files.directory(name="needrestart config directory", path="/etc/needrestart/conf.d")
        config_file(
            name="needrestart lists, never restarts",
            dest="/etc/needrestart/conf.d/90-galion.conf",
            content=render("os_hardening/needrestart.conf.j2"),
            validate="perl -c {staged}",
        )
    if data.os_hardening_apt_listchanges:
        files.directory(name="apt-listchanges config directory", path="/etc/apt/listchanges.conf.d")
        config_file(
            name="apt-listchanges mails news, never pages",
            dest="/etc/apt/listchanges.conf.d/90-galion.conf",
            content="# Managed by galion-infra (operations/os_hardening.py).\n"
            "[apt]\nfrontend=mail\nemail_address=root\nwhich=news\nconfirm=false\n",
        )
    if wanted:
        apt.packages(
            name="Hardening packages: " + ", ".join(wanted),
            packages=wanted,
            no_recommends=True,
            cache_time=3600,
            update=True,
        )


def _root_only_tools():
    names = host.data.os_hardening_root_only_tools
    if not names:
        return
    for path, mode in sorted(host.get_fact(ToolModes, names=names).items()):
        if mode.endswith("0"):
            continue
        quoted = shlex.quote(path)
        server.shell(
            name=f"Only root runs {path}",
            commands=[
                f"dpkg-statoverride --remove {quoted} 2>/dev/null || true",
                f"dpkg-statoverride --update --add root root 0750 {quoted}",
            ],
        )


def _dev_shm():
    if not host.data.os_hardening_dev_shm_noexec:
        return
    options = "defaults,nodev,nosuid,noexec"
    files.line(
        name="/dev/shm: noexec, nosuid, nodev at boot",
        path="/etc/fstab",
        line=r"^tmpfs[[:space:]]+/dev/shm[[:space:]].*$",
        replace=f"tmpfs /dev/shm tmpfs {options} 0 0",
    )
    mounted = host.get_fact(Mounts).get("/dev/shm", {}).get("options", [])
    if mounted and "noexec" not in mounted:
        server.shell(
            name="/dev/shm: noexec, nosuid, nodev now",
            commands=["mount -o remount,nodev,nosuid,noexec /dev/shm"],
        )


def _log_martians():
    if not host.data.os_hardening_log_martians:
        return
    for scope in ("all", "default"):
        # UFW applies its sysctl.conf at every start: the value has to be set there.
        files.line(
            name=f"UFW's sysctl.conf: log martians ({scope})",
            path="/etc/ufw/sysctl.conf",
            line=rf"^net/ipv4/conf/{scope}/log_martians=.*$",
            replace=f"net/ipv4/conf/{scope}/log_martians=1",
        )
    sysctl_values(
        name="Log martians now",
        values={
            "net.ipv4.conf.all.log_martians": 1,
            "net.ipv4.conf.default.log_martians": 1,
        },
    )


def _debsums_weekly():
    if not host.data.os_hardening_debsums:
        return
    files.line(
        name="debsums checks package files weekly",
        path="/etc/default/debsums",
        line=r"^CRON_CHECK=.*$",
        replace="CRON_CHECK=weekly",
    )


def _idle_shells():
    seconds = host.data.os_hardening_shell_idle_timeout
    config_file(
        name="Idle interactive shells end" if seconds else "Idle interactive shells stay",
        dest="/etc/profile.d/galion-idle-timeout.sh",
        content=render("os_hardening/idle-timeout.sh.j2", seconds=seconds),
    )


def _first_run_security_upgrades():
    if not host.data.os_hardening_first_run_security_upgrades:
        return
    if host.get_fact(PathExists, path=SECURITY_UPGRADED_MARKER):
        return
    server.shell(
        name="First run: install the pending security updates",
        commands=[
            "DEBIAN_FRONTEND=noninteractive unattended-upgrade",
            f"install -d -m 0755 /var/lib/galion && touch {SECURITY_UPGRADED_MARKER}",
        ],
    )


@deploy("OS hardening")
def os_hardening():
    _first_run_security_upgrades()
    _login_defs()
    _core_dumps()
    _kernel_modules()
    _banners()
    _packages()
    _debsums_weekly()
    _idle_shells()
    _root_only_tools()
    _dev_shm()
    _log_martians()
