"""Shell the roles run, built by small functions and checked here without a host: the
exact text where it matters, and `bash -n` + shellcheck for every command."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pyinfra.api.command import FileUploadCommand, StringCommand

from actions import restore_steps
from galion import commands, exporters, postgresql
from galion.ops import files as ops_files
from galion.ops import firewall, sysctl, uploads
from galion.ops import postgres as ops_postgres
from operations import base, file_integrity, pgbouncer, redis
from operations.apps import rollout
from operations.backups import repository, schedules
from operations.monitoring import alertmanager
from operations.nginx_tls import certificates, retire
from operations.postgres import cluster, kernel, objects, tuning
from tests import shell_builders

STAGED = "/etc/example.conf.galion-new"


def _fill(command: str) -> str:
    return command.replace("{staged}", STAGED)


CHECKED: set[str] = set()  # the builders BUILT's texts came from, as module.name


def _text(value) -> str:
    """A builder's output as one shell text: commands of a list one after another (a
    file upload is no shell)."""
    if isinstance(value, StringCommand):
        return value.get_raw_value()
    if isinstance(value, list | tuple):
        return " && ".join(_text(v) for v in value if not isinstance(v, FileUploadCommand))
    return value


def built(builder, *args, _part=None, **kwargs) -> str:
    """`builder`'s shell for these sample arguments (`_part`: the item of a tuple it
    returns that is shell); the builder counts as checked."""
    CHECKED.add(f"{builder.__module__}.{builder.__qualname__}")
    made = builder(*args, **kwargs)
    return _text(made if _part is None else made[_part])


def constant(module, name: str) -> str:
    CHECKED.add(f"{module.__name__}.{name}")
    return _text(getattr(module, name))


BUILT = {
    "sshd validate": built(base.ssh.sshd_validate_command),
    "ssh.socket reload": constant(base.ssh, "SSH_SOCKET_RELOAD"),
    "sshd reload": constant(base.ssh, "SSHD_RELOAD"),
    "fail2ban jail test": built(commands.fail2ban_jail_test, "jail.local"),
    "postgres reload": built(postgresql.reload_or_restart_command, 15),
    "postgres cluster up": built(cluster.cluster_up_commands, 17),
    "postgres tuning validate": built(tuning.tuning_validate_command, 16),
    "pg_hba loaded": constant(cluster, "HBA_LOADED"),
    "createdb": built(objects.createdb_command, "galion", "galion"),
    "pgbouncer restart": constant(pgbouncer, "PGBOUNCER_RESTART"),
    "pgbouncer restart now": constant(pgbouncer, "PGBOUNCER_RESTART_NOW"),
    "pgbouncer reload": constant(pgbouncer, "PGBOUNCER_RELOAD"),
    "redis acl validate": built(redis.scratch_start_command, "true", "--aclfile {staged}"),
    "redis bind check": built(
        redis.bind_check_command, ["127.0.0.1", "-::1", "10.0.0.4", "fd00::4"]
    ),
    "redis conf validate": built(redis.bind_check_command, ["127.0.0.1", "-::1"])
    + "; "
    + built(redis.scratch_start_command, "echo 'include {staged}' >> $d/main.conf", ""),
    "pgbackrest validate": built(repository.config_validate_command),
    "aide config check": built(file_integrity.config_check_command),
    "aide first baseline": built(file_integrity.baseline_command, "0123abcd", False),
    "aide new baseline": built(file_integrity.baseline_command, "0123abcd", True),
    "stanza-create": built(repository.stanza_create_command),
    "timer validate": built(schedules.timer_validate_command, "Sun *-*-* 01:00"),
    "nginx test": built(commands.nginx_test_command, "conf.d/20-vhost-galion.app.conf"),
    "placeholder certificate": built(certificates.placeholder_certificate_command),
    "serve certificate": built(
        certificates.serve_certificate_commands, "galion.app", "/etc/letsencrypt/live/galion.app"
    ),
    "certbot": built(
        certificates.certbot_command,
        "galion.app",
        ["galion.app", "www.galion.app"],
        "https://acme.test/dir",
        "ops@galion.app",
        "REQUESTS_CA_BUNDLE=/etc/galion/acme-ca.pem ",
    ),
    "nginx reload": constant(commands, "NGINX_RELOAD"),
    "retire nginx files": built(
        retire.retire_command,
        ["/etc/nginx/conf.d/20-vhost-old.galion.app.conf"],
        ["/etc/nginx/conf.d/10-upstream-old_api.conf"],
    ),
    "restore another cluster's dump": built(
        restore_steps.command,
        {
            "restore": "database",
            "restore_database": "galion",
            "postgres_databases": [{"name": "galion"}],
            "restore_from": "offsite",
            "restore_dump_cluster": 7312345678901234567,
        },
    ),
    "first backup": built(repository.first_backup_command, [1, 2]),
    "lock image user": built(base.users.lock_image_user_command, "ubuntu"),
    "issue certificate": built(
        certificates.issue_certificate_command,
        "galion.app",
        ["galion.app", "www.galion.app"],
        {"nginx_tls_acme_directory": "https://acme.test/dir", "operator_email": "ops@galion.app"},
    ),
    "amtool check": constant(alertmanager, "AMTOOL_CHECK"),
    "exporter restart": built(exporters.restart_command, "prometheus-node-exporter"),
    "exporter started": built(exporters.started_check, "prometheus-node-exporter"),
    "rollouts one by one": built(rollout.rollout_command, ["galion-api", "galion-voice"], 1),
    "rollouts in parallel": built(rollout.rollout_command, ["a", "b", "c"], 2),
    "config file": built(
        ops_files.config_file_commands,
        "/etc/nginx/conf.d/x.conf",
        "server {}\n",
        "root",
        "root",
        "644",
        "nginx -t -q",
        "/etc/nginx/conf.d/x.conf.galion-new",
        False,
        "deploy",
    ),
    "private upload": built(
        uploads.private_upload_commands, "x", "/etc/x", "root", "root", "deploy"
    ),
    "validate staged": built(ops_files.validate_command, "sshd -t -f {staged}", STAGED, "/etc/x"),
    "install staged": built(ops_files.install_command, STAGED, "/etc/x", "root", "adm", "640"),
    "sysctl": built(
        sysctl.sysctl_commands,
        {"vm.swappiness": 10, "net.core.somaxconn": "4096"},
        {"vm.swappiness": {"value": "60", "writable": True}},
        _part=0,
    ),
    "ufw": built(
        firewall.ufw_commands,
        ["allow 22/tcp", "limit 2222/tcp"],
        ["deny from 203.0.113.0/24"],
        ["allow 80/tcp"],
        {"active": False},
        {"incoming": "deny", "routed": "deny"},
    ),
    "run sql file": built(ops_postgres.run_sql_file_command, "galion", "/var/lib/galion/sql/x.sql"),
    "postgres sql": built(ops_postgres.postgres_sql_commands, "select 1;", "galion", "deploy"),
}

# Found by the scan but not shell builders.
NOT_BUILDERS = {
    "galion.ops.files.shell_script": "installs a script file (test_lint shellchecks those)",
    "galion.fact_memo._fact_command": "a fact's own command (tests/unit/test_facts.py)",
}


def test_every_shell_builder_is_checked():
    """A builder added to operations/, actions/ or galion/ (tests/shell_builders.py says what
    counts) fails here until BUILT checks its output."""
    found = shell_builders.find()
    assert {"galion.commands.NGINX_RELOAD", "actions.restore_steps.command"} <= found, found
    assert sorted(found - CHECKED - NOT_BUILDERS.keys()) == []
    assert sorted(NOT_BUILDERS.keys() - found) == []  # no excuse outlives its builder


@pytest.mark.parametrize("name", sorted(BUILT))
def test_every_command_is_valid_shell(name):
    command = _fill(BUILT[name])
    syntax = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    lint = subprocess.run(
        ["shellcheck", "-s", "bash", "-S", "warning", "-"],
        input=command + "\n",
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout


def test_postgres_reload_restarts_only_for_pending_settings():
    assert postgresql.reload_or_restart_command(15) == (
        "pg_ctlcluster 15 main reload || exit 1; for _ in 1 2 3 4 5 6 7 8 9 10; do "
        'n=$(runuser -u postgres -- psql -X -Atc "select count(*) from pg_settings where '
        'pending_restart"); [ "$n" != 0 ] && break; sleep 0.3; done; if [ "$n" != 0 ]; then '
        'echo "restart needed by $n setting(s)"; systemctl restart postgresql@15-main; fi'
    )


def test_postgres_cluster_is_created_only_if_missing():
    assert cluster.cluster_up_commands(17) == [
        "pg_lsclusters --no-header | grep -q '^17 *main ' || pg_createcluster 17 main",
        "pg_ctlcluster 17 main start || pg_ctlcluster 17 main status",
        "systemctl enable postgresql@17-main",
    ]


def test_postgres_tuning_is_validated_against_the_live_main_config():
    text = tuning.tuning_validate_command(16)
    assert "cat /etc/postgresql/16/main/postgresql.conf" in text
    assert "echo \"include '{staged}'\"" in text
    assert "/usr/lib/postgresql/16/bin/postgres -D /var/lib/postgresql/16/main" in text
    assert text.endswith("rm -f $t; exit $r")


def test_sshd_is_validated_with_the_staged_dropin_first():
    assert base.ssh.sshd_validate_command() == (
        "mkdir -p /run/sshd && t=$(mktemp) && "
        '{ echo "Include {staged}"; cat /etc/ssh/sshd_config; } > $t && '
        "sshd -t -f $t; r=$?; rm -f $t; exit $r"
    )


def test_fail2ban_jail_test_replaces_the_live_jail_in_a_scratch_copy():
    assert commands.fail2ban_jail_test("jail.d/galion-nginx.local") == (
        "d=$(mktemp -d) && cp -a /etc/fail2ban/. $d/ && cp {staged} "
        "$d/jail.d/galion-nginx.local && rm -f $d/jail.d/*.galion-new && "
        "fail2ban-client -c $d -t >/dev/null; r=$?; rm -rf $d; exit $r"
    )


def test_redis_scratch_start_never_listens_and_passes_only_if_still_up():
    text = redis.scratch_start_command("true", "--aclfile {staged}")
    assert "--port 0 --unixsocket $d/sock" in text
    assert "--supervised no --aclfile {staged}; r=$?" in text
    assert text.endswith("[ $r = 124 ]")  # timeout's code: it was still running


def test_redis_bind_check_skips_optional_addresses():
    assert redis.bind_check_command(["127.0.0.1", "-::1", "10.0.0.4"]) == (
        'set -- 127.0.0.1 10.0.0.4; for a in "$@"; do case $a in *:*) v=6 ;; *) v=4 ;; esac; '
        'ip -o addr show | awk -v a="$a" \'{sub("/.*", "", $4)} $4 == a {f = 1} '
        'END {exit !f}\' || [ "$(sysctl -n net.ipv$v.ip_nonlocal_bind 2>/dev/null)" = 1 ] '
        '|| { echo "redis: bind address $a is not on this host (and '
        'net.ipv$v.ip_nonlocal_bind is not 1)" >&2; exit 1; }; done'
    )


@pytest.mark.skipif(shutil.which("ip") is None, reason="no ip (iproute2) here")
@pytest.mark.parametrize(
    "addresses,nonlocal_bind,passes",
    [
        (["127.0.0.1", "-::1"], "0", True),
        (["127.0.0.1", "-192.0.2.123"], "0", True),  # optional: Redis skips it
        (["127.0.0.1", "192.0.2.123"], "0", False),
        (["192.0.2.123"], "1", True),  # the kernel binds addresses it does not have
        (["2001:db8::123"], "0", False),
    ],
)
def test_redis_bind_check_runs_here(tmp_path, addresses, nonlocal_bind, passes):
    """Run under sh as config_file does: the real `ip -o addr show`, sysctl stood in
    for (it answers `nonlocal_bind` whatever it is asked)."""
    (tmp_path / "sysctl").write_text(f"#!/bin/sh\necho {nonlocal_bind}\n")
    (tmp_path / "sysctl").chmod(0o755)
    path = f"{tmp_path}:{os.path.dirname(shutil.which('ip'))}:/usr/bin:/bin"
    proc = subprocess.run(
        ["sh", "-c", redis.bind_check_command(addresses)],
        env={"PATH": path},
        capture_output=True,
        text=True,
    )
    assert (proc.returncode == 0) == passes, proc.stderr
    if not passes:
        assert "redis: bind address " in proc.stderr and "is not on this host" in proc.stderr


def test_nginx_test_rewrites_paths_into_the_scratch_copy():
    text = commands.nginx_test_command("conf.d/10-upstream-api.conf")
    assert "cp {staged} $d/conf.d/10-upstream-api.conf" in text
    assert "rm -f $d/conf.d/10-upstream-api.conf.galion-new" in text
    assert 'sed -i "s#/etc/nginx/#$d/#g"' in text
    assert "nginx -t -q -c $d/nginx.conf" in text


def test_certbot_quotes_what_comes_from_data():
    text = certificates.certbot_command(
        "x", ["a.example", "b.example"], "https://acme/dir?x=1", "ops@example.com"
    )
    assert text.startswith("certbot certonly --webroot -w /var/www/letsencrypt --cert-name x ")
    assert "-d a.example -d b.example" in text
    assert "--server 'https://acme/dir?x=1'" in text
    assert "--keep-until-expiring" in text


def test_stanza_create_retries_only_while_the_archiver_holds_the_lock(tmp_path):
    """Run the loop with a stand-in pgbackrest: a lock error is retried, another fails."""
    command = repository.stanza_create_command()
    assert "--stanza=main --log-level-console=warn stanza-create" in command
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "runuser").write_text('#!/bin/sh\nshift 3\nexec "$@"\n')
    calls = tmp_path / "calls"
    for answer, code, wanted_calls in (
        ("ERROR: [050]: unable to acquire lock on file", 1, 30),
        ("ERROR: [039]: HTTP request failed", 1, 1),
        ("", 0, 1),
    ):
        calls.write_text("")
        (fake / "pgbackrest").write_text(
            f'#!/bin/sh\necho x >> {calls}\necho "{answer}"\nexit {code}\n'
        )
        (fake / "sleep").write_text("#!/bin/sh\n")
        for name in ("runuser", "pgbackrest", "sleep"):
            (fake / name).chmod(0o755)
        proc = subprocess.run(
            ["bash", "-c", command], env={"PATH": f"{fake}:/usr/bin:/bin"}, capture_output=True
        )
        assert (proc.returncode == 0) == (code == 0), answer
        assert len(calls.read_text().split()) == wanted_calls, answer


def test_postgres_restart_only_when_allowed():
    held = postgresql.reload_or_restart_command(15, allow_restart=False)
    assert "systemctl restart" not in held
    assert "restart pending" in held
    assert "systemctl restart postgresql@15-main" in postgresql.reload_or_restart_command(15, True)


@pytest.mark.parametrize(
    "value,allowed",
    [
        (True, True),
        ("true", True),
        ("yes", True),
        ("1", True),
        (False, False),
        ("false", False),
        (None, False),
        ("", False),
    ],
)
def test_restart_allowed_reads_data_and_command_line_strings(value, allowed):
    assert postgresql.restart_allowed({"postgres_restart_allowed": value}) is allowed


def test_memory_is_rounded_so_small_moves_change_nothing():
    assert tuning.stable_ram_mb(15990) == tuning.stable_ram_mb(16384) == 16384
    assert tuning.stable_ram_mb(15300) == 15360
    assert tuning.stable_ram_mb(300) == 1024


def test_pgbouncer_restarts_only_for_listen_changes():
    ini = "listen_addr = 127.0.0.1\nlisten_port = 6432\npool_mode = transaction\n"
    same = {"listen_addr": "127.0.0.1", "listen_port": "6432"}
    assert not pgbouncer.pgbouncer_needs_restart(same, ini)
    assert pgbouncer.pgbouncer_needs_restart(dict(same, listen_port="6433"), ini)
    assert pgbouncer.pgbouncer_needs_restart(dict(same, listen_addr="127.0.0.1,10.0.0.4"), ini)
    assert not pgbouncer.pgbouncer_needs_restart({}, ini)  # first install: nothing runs yet


def test_a_failed_issue_is_recorded_and_keeps_the_placeholder():
    text = certificates.issue_certificate_command(
        "galion.app",
        ["galion.app"],
        {"nginx_tls_acme_directory": "https://a/d", "operator_email": "o@x.io"},
    )
    issued, failed = text.split("; else ")
    assert issued.startswith("if certbot certonly ")
    assert "rm -f /var/lib/galion/acme-failed/galion.app" in issued
    assert "ln -sfn /etc/letsencrypt/live/galion.app/fullchain.pem" in issued
    assert "date +%s > /var/lib/galion/acme-failed/galion.app.new && mv" in failed
    assert "ln -sfn" not in failed and failed.endswith("exit 1; fi")


@pytest.mark.parametrize("nginx_accepts", [True, False])
def test_retiring_nginx_files_puts_them_back_when_nginx_refuses(tmp_path, nginx_accepts):
    """Run the command for real, in a scratch conf.d, with an `nginx` that accepts or refuses."""
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    stale = conf_d / "20-vhost-old.galion.app.conf"
    stale.write_text("server {}\n")
    # A run that stopped after renaming this one, before its reload.
    (conf_d / "10-upstream-old_api.conf.galion-retired").write_text("upstream old_api {}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nginx").write_text(f"#!/bin/sh\nexit {0 if nginx_accepts else 1}\n")
    (bin_dir / "nginx").chmod(0o755)
    command = retire.retire_command([str(stale)], [str(conf_d / "10-upstream-old_api.conf")])
    run = subprocess.run(
        ["sh", "-c", command],
        env=dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}"),
        capture_output=True,
        text=True,
    )
    left = sorted(p.name for p in conf_d.iterdir())
    if nginx_accepts:
        assert run.returncode == 0, run.stderr
        assert left == [
            "10-upstream-old_api.conf.galion-retired",
            "20-vhost-old.galion.app.conf.galion-retired",
        ]
    else:
        assert run.returncode == 1 and "put back, nothing reloaded" in run.stderr
        assert left == ["10-upstream-old_api.conf", "20-vhost-old.galion.app.conf"]


@pytest.mark.parametrize("template", ["vhost.conf.j2", "upstream.conf.j2"])
def test_the_files_a_retire_may_take_start_with_the_roles_header(template):
    """The retire finds this role's files by that header: a template without it would
    leave its files served after their name left the data."""
    source = Path(__file__).parents[2] / "templates/nginx_tls/etc/nginx/conf.d"
    assert (source / template).read_text().startswith(retire.MANAGED)


def test_only_this_roles_per_name_files_are_ever_retired():
    match = retire.PER_NAME_FILE.match
    assert match("20-vhost-galion.app.conf").group(2) == "galion.app"
    assert match("10-upstream-galion_api.conf.galion-retired").group(3)
    for other in (
        "00-galion-http.conf",
        "90-galion-https-sockets.conf",
        "20-vhost-galion.app.conf.galion-new",  # a staged file: config_file's own
        "20-vhost-galion.app.conf.bak",
        "zz-operator.conf",
    ):
        assert not match(other), other


def test_private_binds_survive_a_reboot_only_where_there_are_private_binds():
    data = {"postgres_vm_swappiness": 10, "postgres_vm_overcommit_memory": 1}
    assert "net.ipv4.ip_nonlocal_bind" not in kernel.os_settings(data, False)
    fleet = kernel.os_settings(data, True)
    assert fleet["net.ipv4.ip_nonlocal_bind"] == fleet["net.ipv6.ip_nonlocal_bind"] == 1


def test_a_database_restore_reads_another_clusters_dumps_only_when_asked():
    data = {
        "restore": "database",
        "restore_database": "galion",
        "postgres_databases": [{"name": "galion"}],
    }
    offsite = dict(data, restore_from="offsite")
    call = "/usr/local/sbin/galion-restore database galion --from offsite"
    assert restore_steps.command(offsite) == call
    assert restore_steps.command(dict(offsite, restore_dump_cluster="")) == call
    # pyinfra's --data turns the digits into an int.
    assert restore_steps.command(dict(offsite, restore_dump_cluster=7312345678901234567)) == (
        f"{call} --cluster 7312345678901234567"
    )
    for bad in ("abc", "73 12", "1;id", "-1", "7312\n", "../7312"):
        with pytest.raises(restore_steps.RestoreRequestError, match="digits only"):
            restore_steps.command(dict(offsite, restore_dump_cluster=bad))
    with pytest.raises(restore_steps.RestoreRequestError, match="restore_from=offsite"):
        restore_steps.command(dict(data, restore_dump_cluster="7312345678901234567"))


def test_a_cluster_serves_only_when_its_major_is_online():
    clusters = [
        {"version": "15", "cluster": "main", "status": "down"},
        {"version": "16", "cluster": "main", "status": "online"},
    ]
    assert postgresql.serving(clusters, 16) is True
    assert postgresql.serving(clusters, 15) is False
    assert postgresql.serving([], 16) is False
    # A replica says "online,recovery": it serves (reads) as well.
    assert postgresql.serving([{"version": "15", "status": "online,recovery"}], 15) is True
