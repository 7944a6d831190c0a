"""Kernel: sysctl hardening, written to a file and applied live where the host allows."""

from pyinfra import host

from galion.ops import config_file, render, sysctl_values


def sysctl():
    if not host.data.base_sysctl_enabled:
        return
    values = sysctl_hardening(host.data, host.groups)
    config_file(
        name="sysctl hardening file",
        dest="/etc/sysctl.d/90-galion-hardening.conf",
        content=render("shared/sysctl.conf.j2", values=values),
    )
    sysctl_values(name="sysctl hardening applied where this host allows", values=values)


def sysctl_hardening(data, groups) -> dict[str, int]:
    forwarding = int(any(g in groups for g in data.get("base_ip_forwarding_groups", [])))
    return {
        # Spoofed sources, redirects and source routing: a server routes nothing by them.
        "net.ipv4.conf.all.rp_filter": 1,
        "net.ipv4.conf.default.rp_filter": 1,
        "net.ipv4.conf.all.accept_redirects": 0,
        "net.ipv4.conf.default.accept_redirects": 0,
        "net.ipv4.conf.all.secure_redirects": 0,
        "net.ipv4.conf.default.secure_redirects": 0,
        "net.ipv4.conf.all.send_redirects": 0,
        "net.ipv4.conf.default.send_redirects": 0,
        "net.ipv4.conf.all.accept_source_route": 0,
        "net.ipv4.conf.default.accept_source_route": 0,
        "net.ipv6.conf.all.accept_redirects": 0,
        "net.ipv6.conf.default.accept_redirects": 0,
        "net.ipv6.conf.all.accept_source_route": 0,
        "net.ipv4.icmp_echo_ignore_broadcasts": 1,
        "net.ipv4.icmp_ignore_bogus_error_responses": 1,
        "net.ipv4.tcp_syncookies": 1,
        "net.ipv4.tcp_rfc1337": 1,
        # Docker hosts publish ports through forwarding; everything else forwards nothing.
        "net.ipv4.ip_forward": forwarding,
        # (log_martians is left to UFW, whose sysctl.conf sets it at every ufw start.)
        "kernel.kptr_restrict": 2,
        "kernel.dmesg_restrict": 1,
        "kernel.unprivileged_bpf_disabled": 1,
        "kernel.randomize_va_space": 2,
        "fs.protected_hardlinks": 1,
        "fs.protected_symlinks": 1,
        "fs.protected_fifos": 2,
        "fs.protected_regular": 2,
        "fs.suid_dumpable": 0,
    }
