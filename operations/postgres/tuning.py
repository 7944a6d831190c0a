"""What PostgreSQL's settings are on this host: sizes from its memory budget (the usual
PGTune proportions), the rest from the knobs. Pure: data in, settings out."""

from galion import postgresql


def stable_ram_mb(mem_total_mb: int) -> int:
    """MemTotal rounded to whole GiB: kernel updates, crash-kernel reservations and
    firmware move MemTotal by some MB, which must not move the tuning (and restart)."""
    return max(1, round(mem_total_mb / 1024)) * 1024


def memory_budget_mb(data, ram_mb: int, groups) -> int:
    if data.get("postgres_memory_budget_mb"):
        return int(data.get("postgres_memory_budget_mb"))
    return ram_mb // 2 if "app" in groups else ram_mb * 3 // 4


def tuning(
    data, budget_mb: int, listen: list[str], major: int, standby: tuple[str, str] | None = None
) -> list[tuple[str, str, str]]:
    """(setting, value, why) for conf.d; sizes follow the usual PGTune proportions.
    `standby`: (primary_conninfo, slot) on a replica."""
    max_connections = int(data.get("postgres_max_connections"))
    shared_buffers = budget_mb // 4
    work_mem = max(4, (budget_mb - shared_buffers) // (max_connections * 3))
    maintenance = min(2048, max(64, budget_mb // 16))
    return [
        (
            "listen_addresses",
            f"'{','.join(listen)}'",
            "localhost, or the private address too when other hosts connect",
        ),
        ("port", str(data.get("postgres_port")), "TCP port"),
        (
            "max_connections",
            str(max_connections),
            "PgBouncer in front keeps the real number far lower",
        ),
        ("password_encryption", "'scram-sha-256'", "no md5 verifiers"),
        ("shared_buffers", f"{shared_buffers}MB", f"1/4 of the {budget_mb} MB budget"),
        (
            "effective_cache_size",
            f"{budget_mb * 3 // 4}MB",
            "3/4 of the budget: page cache the planner may count on",
        ),
        ("work_mem", f"{work_mem}MB", "(budget - shared_buffers) / (3 x max_connections)"),
        (
            "maintenance_work_mem",
            f"{maintenance}MB",
            "budget / 16 (64 MB .. 2 GB): VACUUM, CREATE INDEX",
        ),
        ("huge_pages", "try", "use huge pages where the kernel offers them"),
        ("random_page_cost", str(data.get("postgres_random_page_cost")), "SSD"),
        ("effective_io_concurrency", str(data.get("postgres_effective_io_concurrency")), "SSD"),
        ("wal_level", "replica", "streaming replicas and WAL archiving (PITR)"),
        ("max_wal_senders", str(data.get("postgres_max_wal_senders")), "replicas + backup streams"),
        (
            "max_replication_slots",
            str(data.get("postgres_max_replication_slots")),
            "one per replica",
        ),
        (
            "max_slot_wal_keep_size",
            str(data.get("postgres_max_slot_wal_keep_size")),
            "WAL an absent replica's slot may hold: the disk never fills for it",
        ),
        ("wal_compression", "lz4" if major >= 15 else "on", "smaller WAL for archive and replicas"),
        ("checkpoint_timeout", data.get("postgres_checkpoint_timeout"), "spacing of checkpoints"),
        ("checkpoint_completion_target", "0.9", "spread checkpoint I/O"),
        ("max_wal_size", data.get("postgres_max_wal_size"), "WAL between forced checkpoints"),
        ("min_wal_size", data.get("postgres_min_wal_size"), "WAL recycled, not removed"),
        ("shared_preload_libraries", "'pg_stat_statements'", "per-query statistics"),
        ("pg_stat_statements.track", "all", "including statements inside functions"),
        ("track_io_timing", "on", "I/O time in EXPLAIN and pg_stat_statements"),
        (
            "log_min_duration_statement",
            str(data.get("postgres_log_min_duration_ms")),
            "slow queries, ms",
        ),
        ("log_checkpoints", "on", "checkpoint timings in the log"),
        ("log_lock_waits", "on", "waits longer than deadlock_timeout"),
        ("log_temp_files", "0", "every spill to disk: work_mem too small?"),
        ("log_connections", "off", "PgBouncer would flood the log"),
        (
            "wal_log_hints",
            "on",
            "a demoted primary can rejoin with pg_rewind (a restart on an existing box)",
        ),
    ] + (
        [
            ("primary_conninfo", f"'{standby[0]}'", "the primary (password in the passfile)"),
            ("primary_slot_name", f"'{standby[1]}'", "its slot keeps the WAL this replica needs"),
            ("hot_standby", "on", "read-only queries on the replica"),
            ("hot_standby_feedback", "on", "no query on the replica cancelled by VACUUM"),
        ]
        if standby
        else []
    )


def tuning_validate_command(major: int) -> str:
    """Validate the staged file together with the live main config: postgres -C parses
    everything (units, names, ranges) and exits, also while the server runs."""
    conf_dir = postgresql.config_dir(major)
    return (
        f"t={conf_dir}/galion-validate.tmp; {{ cat {conf_dir}/postgresql.conf; "
        f"echo \"include '{{staged}}'\"; }} > $t && chown postgres $t && "
        f"runuser -u postgres -- /usr/lib/postgresql/{major}/bin/postgres "
        f"-D {postgresql.data_dir(major)} -c config_file=$t -C shared_buffers "
        f">/dev/null; r=$?; rm -f $t; exit $r"
    )
