"""OS hardening, checked on the live host (operations/os_hardening.py)."""

from operations.os_hardening import SECURITY_UPGRADED_MARKER


def test_login_defs_umask_and_rounds(node):
    defs = node.host.file("/etc/login.defs").content_string.splitlines()
    active = [line.split() for line in defs if line and not line.startswith("#")]
    values = {words[0]: words[1:] for words in active if words}
    assert [w[0] for w in active].count("UMASK") == 1
    assert values["UMASK"] == [node.data["os_hardening_login_umask"]]
    rounds = str(node.data["os_hardening_sha_crypt_rounds"])
    assert values["SHA_CRYPT_MIN_ROUNDS"] == [rounds] == values["SHA_CRYPT_MAX_ROUNDS"]


def test_converge_commands_keep_umask_022_under_sudo(node):
    # testinfra runs through the deploy user's sudo, like pyinfra.
    assert node.host.check_output("umask") == "0022"


def test_no_core_dumps(node):
    assert node.host.run("grep -qx '\\* hard core 0' /etc/security/limits.d/*.conf").rc == 0
    assert "DefaultLimitCORE=0" in node.host.check_output("cat /etc/systemd/system.conf.d/*.conf")
    assert node.host.check_output("sh -lc 'ulimit -c'") == "0"
    # root's hard limit too (sudo's PAM session applies limits.d; Debian 13 ships
    # "root hard core infinity").
    assert node.host.check_output("ulimit -Hc") == "0"


def test_unused_modules_cannot_load(node):
    blacklist = node.host.file("/etc/modprobe.d/galion-blacklist.conf").content_string
    for module in (
        node.data["os_hardening_blacklisted_filesystems"]
        + node.data["os_hardening_blacklisted_storage"]
        + node.data["os_hardening_blacklisted_protocols"]
    ):
        assert f"install {module} /bin/false\n" in blacklist
    # modprobe reads it: what it would run for dccp is the refusal (no kmod in the
    # sandbox's minimal hosts; a VM has it).
    if node.host.exists("modprobe"):
        assert "install /bin/false" in node.host.check_output("modprobe -n -v dccp 2>&1 || true")


def test_banners_packages_and_their_settings(node):
    assert "Authorized access only" in node.host.file("/etc/issue.net").content_string
    for package in ("acct", "libpam-tmpdir", "needrestart", "libpam-pwquality", "debsums"):
        assert node.host.package(package).is_installed, package
    assert node.host.service("acct").is_running
    assert "$nrconf{restart} = 'l';" in node.host.check_output(
        "cat /etc/needrestart/conf.d/90-galion.conf"
    )
    assert "pam_tmpdir.so" in node.host.file("/etc/pam.d/common-session").content_string
    timeout = node.host.file("/etc/profile.d/galion-idle-timeout.sh").content_string
    assert f"TMOUT={node.data['os_hardening_shell_idle_timeout']}" in timeout


def test_compilers_are_root_only(node):
    overrides = node.host.check_output("dpkg-statoverride --list")
    for name in node.data["os_hardening_root_only_tools"]:
        found = node.host.run(f"command -v {name}")
        if found.rc != 0:
            continue  # not installed (Debian 13's needrestart brings no binutils)
        real = node.host.check_output(f"readlink -f {found.stdout.strip()}")
        assert node.host.file(real).mode == 0o750, real
        assert real in overrides, real


def test_dev_shm_noexec_and_martians_logged(node):
    options = node.host.check_output("findmnt -no OPTIONS /dev/shm").split(",")
    assert {"noexec", "nosuid", "nodev"} <= set(options)
    assert node.host.check_output("sysctl -n net.ipv4.conf.all.log_martians") == "1"


def test_first_converge_installed_pending_security_updates(node):
    assert node.host.file(SECURITY_UPGRADED_MARKER).exists
    log = node.host.run("test -s /var/log/unattended-upgrades/unattended-upgrades.log")
    assert log.rc == 0, "unattended-upgrade never ran"
