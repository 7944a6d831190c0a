"""PostgreSQL on db hosts, checked live (operations/postgres/)."""

import re

import pytest

from tests.inventory import private_or_loopback
from tests.roles.data_tier import assert_wrong_or_no_password_is_refused, listening_addresses, psql

GROUP = "db"
SIZE = {"kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
TIME = {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86400}


def _in_base_units(value: str, unit: str | None) -> float:
    m = re.fullmatch(r"(-?[\d.]+)\s*([a-zA-Z]*)", value)
    number, suffix = float(m.group(1)), m.group(2)
    if suffix in SIZE:
        return number * SIZE[suffix]
    if suffix in TIME:
        return number * TIME[suffix]
    # A bare number is in the setting's own unit.
    if unit in SIZE or unit == "8kB":
        return number * (8192 if unit == "8kB" else SIZE[unit])
    if unit in TIME:
        return number * TIME[unit]
    return number


def listen_addresses(node) -> list[str]:
    """Loopback, and in a fleet the private address (replication, PgBouncer's peers)."""
    private = node.data.get("private_address")
    return ["localhost"] + ([private] if private else [])


# The sizes for a memory budget (postgres_memory_budget_mb, MB) and max_connections,
# worked out by hand from the plan's proportions: shared_buffers 1/4 of the budget,
# effective_cache_size 3/4, work_mem (budget - shared_buffers) / (3 x max_connections)
# in whole MB but at least 4 MB, maintenance_work_mem budget / 16 within 64 MB .. 2 GB.
SIZES = {
    # The sandbox's hosts (inventories/sandbox.py): 768 / 600 is 1, so the 4 MB floor;
    # 1024 / 16 is 64.
    (1024, 200): {
        "shared_buffers": "256MB",
        "effective_cache_size": "768MB",
        "work_mem": "4MB",
        "maintenance_work_mem": "64MB",
    },
    # Production's database host (inventories/prod.py): 4608 / 600 is 7; 6144 / 16 is 384.
    (6144, 200): {
        "shared_buffers": "1536MB",
        "effective_cache_size": "4608MB",
        "work_mem": "7MB",
        "maintenance_work_mem": "384MB",
    },
}


def expected_settings(node) -> dict[str, str]:
    data = node.data
    key = (data.get("postgres_memory_budget_mb"), data["postgres_max_connections"])
    if key not in SIZES:
        pytest.fail(f"no expected sizes for (budget, max_connections) {key}: add them to SIZES")
    return {
        "listen_addresses": ",".join(listen_addresses(node)),
        "port": str(data["postgres_port"]),
        "max_connections": str(data["postgres_max_connections"]),
        "password_encryption": "scram-sha-256",
        **SIZES[key],
        "huge_pages": "try",
        "random_page_cost": str(data["postgres_random_page_cost"]),
        "effective_io_concurrency": str(data["postgres_effective_io_concurrency"]),
        "wal_level": "replica",
        "max_wal_senders": str(data["postgres_max_wal_senders"]),
        "max_replication_slots": str(data["postgres_max_replication_slots"]),
        "max_slot_wal_keep_size": str(data["postgres_max_slot_wal_keep_size"]),
        # Every major the distros ship here (15, 16, 17) compresses WAL with lz4.
        "wal_compression": "lz4",
        "checkpoint_timeout": data["postgres_checkpoint_timeout"],
        "checkpoint_completion_target": "0.9",
        "max_wal_size": data["postgres_max_wal_size"],
        "min_wal_size": data["postgres_min_wal_size"],
        "shared_preload_libraries": "pg_stat_statements",
        "pg_stat_statements.track": "all",
        "track_io_timing": "on",
        "log_min_duration_statement": str(data["postgres_log_min_duration_ms"]),
        "log_checkpoints": "on",
        "log_lock_waits": "on",
        "log_temp_files": "0",
        "log_connections": "off",
        "wal_log_hints": "on",
    }


def test_major_version_comes_from_the_distro(node):
    release = dict(
        line.split("=", 1)
        for line in node.host.file("/etc/os-release").content_string.splitlines()
        if "=" in line
    )
    key = (release["ID"].strip('"'), release["VERSION_ID"].strip('"'))
    # Written here, not read from the code: what each distro ships.
    distro_major = {("debian", "12"): 15, ("debian", "13"): 17, ("ubuntu", "24.04"): 16}
    wanted = node.data.get("postgres_version") or distro_major[key]
    assert int(psql(node, "show server_version_num")) // 10000 == wanted


def test_live_settings_match_the_data(node):
    wanted = expected_settings(node)
    rows = psql(node, "select name, setting, coalesce(unit, '') from pg_settings")
    live = {n: (s, u or None) for n, s, u in (r.split("|") for r in rows.splitlines())}
    for name, value in wanted.items():
        setting, unit = live[name]
        if re.fullmatch(r"-?[\d.]+\s*[a-zA-Z]*", value) and (unit or re.search(r"[a-z]$", value)):
            assert _in_base_units(value, unit) == _in_base_units(setting, unit), name
        else:
            assert setting.lower() == value.lower(), name
    assert psql(node, "select count(*) from pg_settings where pending_restart") == "0"


def test_pg_stat_statements_collects(node):
    assert int(psql(node, "select count(*) from pg_stat_statements")) >= 0


def test_databases_owned_by_their_login_roles(node):
    owners = dict(
        r.split("|")
        for r in psql(node, "select datname, pg_get_userbyid(datdba) from pg_database").splitlines()
    )
    for db in node.data["postgres_databases"]:
        assert owners.get(db["name"]) == db["owner"]
    roles = {
        r.split("|")[0]: r.split("|")[1:]
        for r in psql(
            node,
            "select rolname, rolcanlogin, rolsuper, rolreplication, "
            "left(rolpassword, 14) from pg_authid",
        ).splitlines()
    }
    for db in node.data["postgres_databases"]:
        assert roles[db["owner"]] == ["t", "f", "f", "SCRAM-SHA-256$"]
    assert roles[node.data["postgres_replication_role"]][:3] == ["t", "f", "t"]
    monitor = node.data["postgres_monitoring_role"]
    assert roles[monitor][:3] == ["t", "f", "f"]
    assert psql(node, f"select pg_has_role('{monitor}', 'pg_monitor', 'member')") == "t"


def test_hba_has_no_trust_and_no_md5(node):
    methods = set(psql(node, "select auth_method from pg_hba_file_rules").split())
    assert methods <= {"peer", "scram-sha-256"}, methods
    assert psql(node, "select count(*) from pg_hba_file_rules where error is not null") == "0"


def test_listens_on_loopback_and_the_private_address_only(node):
    addresses = listening_addresses(node, node.data["postgres_port"])
    wanted = {"127.0.0.1", "[::1]", private_or_loopback(node)}
    assert addresses and addresses <= wanted, addresses


def test_wrong_or_no_password_is_refused(node):
    assert_wrong_or_no_password_is_refused(node, node.data["postgres_port"])
