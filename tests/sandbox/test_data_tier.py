"""Changing data-tier knobs and secrets, then converging (operations/postgres/,
pgbouncer.py, redis.py).

Runs after tests/roles on a converged sandbox; every test leaves it as it found it.
"""

import secrets as random_secrets

import pytest

from sandbox.converge import converge
from tests.inventory import in_group

DB = in_group("db")[0] if in_group("db") else None
pytestmark = pytest.mark.skipif(DB is None, reason="no db host in the inventory")


def psql(sql: str) -> str:
    return DB.host.check_output(f'runuser -u postgres -- psql -X -Atc "{sql}"')


def started_at() -> str:
    return psql("select pg_postmaster_start_time()")


# The restart rule and the password rotation are this code's logic, the same on every
# distro: the first distro only (the CI time goes to the fleet).
@pytest.mark.once
def test_a_reload_only_setting_reloads_and_a_restart_setting_restarts():
    """One run changes a setting PostgreSQL reloads: no restart. The next also changes
    one that needs a restart: restarted, nothing left pending. Back to the data's values,
    then a run that changes nothing."""
    before = started_at()
    reload_only = ("--data", "postgres_log_min_duration_ms=2500")
    first = converge(*reload_only).check()
    assert any("PostgreSQL tuning" in c for c in first.changed)
    assert psql("show log_min_duration_statement") == "2500ms"
    assert started_at() == before

    budget = DB.data["postgres_memory_budget_mb"] + 512
    converge(*reload_only, "--data", f"postgres_memory_budget_mb={budget}").check()
    assert psql("show shared_buffers") == f"{budget // 4}MB"
    assert psql("select count(*) from pg_settings where pending_restart") == "0"
    assert started_at() != before

    converge().check()
    assert psql("show log_min_duration_statement") == "1s"
    assert psql("show shared_buffers") == f"{DB.data['postgres_memory_budget_mb'] // 4}MB"
    assert converge().check().changed == []


@pytest.mark.once
def test_a_restart_waits_until_a_run_allows_it():
    """Production's rule: a setting that needs a restart is reloaded and reported as
    pending; PostgreSQL restarts only in a run that allows it."""
    before = started_at()
    original = DB.data["postgres_memory_budget_mb"] // 4
    budget = ["--data", f"postgres_memory_budget_mb={DB.data['postgres_memory_budget_mb'] + 512}"]
    held = ["--data", "postgres_restart_allowed=false"]
    first = converge(*budget, *held).check()
    assert any("PostgreSQL tuning" in c for c in first.changed)
    assert started_at() == before
    assert psql("show shared_buffers") == f"{original}MB"
    assert psql("select name from pg_settings where pending_restart") == "shared_buffers"
    again = converge(*budget, *held).check()
    assert again.changed == []
    assert "PostgreSQL restart pending for shared_buffers" in again.stderr
    assert started_at() == before
    allowed = converge(*budget, "--data", "postgres_restart_allowed=true").check()
    assert any("Restart PostgreSQL for settings that wait" in c for c in allowed.changed)
    assert started_at() != before
    assert psql("show shared_buffers") == f"{original + 128}MB"
    converge().check()
    assert psql("show shared_buffers") == f"{original}MB"
    assert converge().check().changed == []


def _listening(port: int) -> bool:
    return DB.host.run(f"ss -Htln 'sport = :{port}' | grep -q LISTEN").rc == 0


@pytest.mark.once
def test_a_pgbouncer_port_change_takes_effect_in_the_same_run():
    port, moved = DB.data["pgbouncer_port"], DB.data["pgbouncer_port"] + 1
    try:
        converge("--data", f"pgbouncer_port={moved}").check()
        assert _listening(moved) and not _listening(port)
        assert _login(f"{DB.data['app_env_dir']}/galion.env") == 0  # the apps follow
    finally:
        converge().check()
    assert _listening(port) and not _listening(moved)


def _login(env_file: str) -> int:
    return DB.host.run(
        f'bash -c \'set -a; . {env_file}; set +a; psql -X -w -Atc "select 1" "$DATABASE_URL"\''
    ).rc


@pytest.mark.once
def test_changed_password_applies_and_the_old_one_stops_working(env_with):
    env_file = f"{DB.data['app_env_dir']}/galion.env"
    old_copy = "/root/galion-old.env"
    DB.host.check_output(f"install -m 600 {env_file} {old_copy}")
    try:
        assert _login(old_copy) == 0
        changed = converge(env=env_with(POSTGRES_GALION_PASSWORD=random_secrets.token_urlsafe(24)))
        assert any("Role galion " in c for c in changed.check().changed)
        assert _login(env_file) == 0
        assert _login(old_copy) != 0
    finally:
        converge().check()
        assert _login(old_copy) == 0
        DB.host.run(f"rm -f {old_copy}")
