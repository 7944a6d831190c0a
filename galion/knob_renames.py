"""Knob names this code no longer reads, with the names that replaced them.

A setting under an old name would be silently ignored (the role reads the new name and
its default): preflight refuses an inventory that still sets one, naming the new one.
When a knob is renamed, add it here."""


def _prefixed(old: str, new: str, names: tuple[str, ...]) -> dict[str, str]:
    return {old + name: new + name for name in names}


RENAMED: dict[str, str] = {
    # Step 10: a knob's prefix is its role's name.
    **_prefixed(
        "hardening_",
        "os_hardening_",
        (
            "login_umask",
            "sha_crypt_rounds",
            "core_dumps_off",
            "blacklisted_filesystems",
            "blacklisted_storage",
            "blacklisted_protocols",
            "login_banner",
            "process_accounting",
            "pam_tmpdir",
            "needrestart",
            "shell_idle_timeout",
            "password_quality",
            "debsums",
            "root_only_tools",
            "dev_shm_noexec",
            "log_martians",
            "apt_listchanges",
            "first_run_security_upgrades",
        ),
    ),
    "app_stacks": "app_env_stacks",
    **_prefixed(
        "nginx_",
        "nginx_tls_",
        (
            "vhosts",
            "upstream_ports",
            "app_metrics_path",
            "upstream_connect_timeout",
            "metrics_upstreams",
            "acme_directory",
            "acme_ca_bundle",
            "client_max_body_size",
            "access_log_flush_seconds",
            "rate_api_per_minute",
            "rate_api_burst",
            "rate_general_per_minute",
            "rate_general_burst",
            "rate_limit_exempt_cidrs",
            "connections_per_ip",
            "cache_api_size",
            "cache_static_size",
            "cache_api_valid",
            "cache_static_valid",
            "acme_retry_minutes",
            "fail2ban_bantime",
            "fail2ban_bantime_max",
            "behind_cloudflare",
            "cloudflare_ranges",
            "exporter_port",
            "status_port",
        ),
    ),
}
