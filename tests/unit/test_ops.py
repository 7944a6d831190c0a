"""The decisions of galion.ops, as pure functions: facts' values in, commands out (no host)."""

import grp
import hashlib
import os
import pwd
import subprocess

import pytest
from pyinfra.api import OperationError, StringCommand
from pyinfra.api.command import FileUploadCommand

from galion import ops


def raw(commands):
    """Shell strings of StringCommands; uploads as ("upload", dest, temp, content)."""
    out = []
    for command in commands:
        if isinstance(command, FileUploadCommand):
            out.append(
                ("upload", command.dest, command.remote_temp_filename, command.src.getvalue())
            )
        else:
            assert isinstance(command, StringCommand), command
            out.append(command.get_raw_value())
    return out


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# UFW

FRESH = {"active": False}
ACTIVE = {"active": True, "incoming": "deny", "outgoing": "allow", "routed": "deny"}
DEFAULTS = {"incoming": "deny", "outgoing": "allow", "routed": "deny"}


@pytest.mark.parametrize(
    "wanted",
    [
        [],
        ["allow 80/tcp", "allow 443/tcp"],
        ["deny 22/tcp", "allow 80/tcp"],
        ["reject 22/tcp"],
        # Only some sources: the operator may not be among them.
        ["allow from 10.8.0.0/24 to any port 22 proto tcp"],
    ],
)
def test_ufw_refuses_rules_that_do_not_let_ssh_in(wanted):
    with pytest.raises(OperationError, match="^refusing to enable UFW without a rule for port 22$"):
        ops.ufw_check_port(wanted, 22)


@pytest.mark.parametrize(
    "wanted",
    [
        ["allow 22/tcp"],
        ["limit 22/tcp", "allow 80/tcp"],
        ["allow from 10.8.0.0/24 to any port 22 proto tcp", "limit 22/tcp comment 'ssh'"],
    ],
)
def test_ufw_accepts_a_rule_that_lets_ssh_in(wanted):
    assert ops.ufw_check_port(wanted, 22) is None


def test_ufw_without_a_port_to_protect_checks_nothing():
    assert ops.ufw_check_port([], None) is None


def test_ufw_fresh_host_gets_everything_in_order():
    commands = ops.ufw_commands(
        rules=["limit 22/tcp", "allow 80/tcp"],
        prepend=["allow from 10.8.0.0/24"],
        present=[],
        status=FRESH,
        defaults=DEFAULTS,
    )
    assert commands == [
        "ufw prepend allow from 10.8.0.0/24",
        "ufw limit 22/tcp",
        "ufw allow 80/tcp",
        "ufw default deny incoming",
        "ufw default allow outgoing",
        "ufw default deny routed",
        "ufw --force enable",
    ]


def test_ufw_converged_host_gets_nothing():
    commands = ops.ufw_commands(
        rules=["limit 22/tcp", "allow 80/tcp"],
        prepend=["allow from 10.8.0.0/24"],
        present=["allow from 10.8.0.0/24", "limit 22/tcp", "allow 80/tcp"],
        status=ACTIVE,
        defaults=DEFAULTS,
    )
    assert commands == []


def test_ufw_appends_missing_and_deletes_unwanted_rules():
    commands = ops.ufw_commands(
        rules=["limit 22/tcp", "allow 443/tcp"],
        prepend=[],
        present=["limit 22/tcp", "allow 8080/tcp", "allow 80/tcp"],
        status=ACTIVE,
        defaults=None,
    )
    assert commands == ["ufw allow 443/tcp", "ufw delete allow 8080/tcp", "ufw delete allow 80/tcp"]


def test_ufw_prepends_a_trusted_source_on_an_active_firewall():
    commands = ops.ufw_commands(
        rules=["limit 22/tcp"],
        prepend=["allow from 192.0.2.10"],
        present=["limit 22/tcp"],
        status=ACTIVE,
        defaults=DEFAULTS,
    )
    assert commands == ["ufw prepend allow from 192.0.2.10"]


def test_ufw_changes_only_the_default_that_differs():
    status = {"active": True, "incoming": "deny", "outgoing": "allow", "routed": "allow"}
    commands = ops.ufw_commands(["allow 22/tcp"], [], ["allow 22/tcp"], status, DEFAULTS)
    assert commands == ["ufw default deny routed"]


def test_ufw_routed_disabled_on_a_host_that_forwards_nothing_counts_as_deny():
    # ufw prints "disabled (routed)" with ip_forward=0, even right after `default deny`.
    status = {"active": True, "incoming": "deny", "outgoing": "allow", "routed": "disabled"}
    assert ops.ufw_commands(["allow 22/tcp"], [], ["allow 22/tcp"], status, DEFAULTS) == []


def test_ufw_enables_an_inactive_firewall_with_its_rules_in_place():
    commands = ops.ufw_commands(["allow 22/tcp"], [], ["allow 22/tcp"], FRESH, None)
    assert commands == ["ufw --force enable"]


def test_ufw_missing_binary_defaults_still_enable():
    # UfwStatus's default when ufw is not installed yet (prepare phase).
    commands = ops.ufw_commands(["allow 22/tcp"], [], [], {"active": False}, {"incoming": "deny"})
    assert commands == ["ufw allow 22/tcp", "ufw default deny incoming", "ufw --force enable"]


# sysctl

CURRENT = {
    "net.ipv4.ip_forward": {"value": "0", "writable": True},
    "net.ipv4.tcp_rmem": {"value": "4096 131072 6291456", "writable": True},
    "vm.swappiness": {"value": "60", "writable": True},
    "kernel.pid_max": {"value": "4194304", "writable": False},
    "fs.file-max": {"value": "9223372036854775807", "writable": False},
    "net.netfilter.nf_conntrack_max": {"value": None, "writable": False},
}


def test_sysctl_writes_only_what_differs_and_may_be_written():
    values = {
        "vm.swappiness": 10,
        "net.ipv4.ip_forward": "1",
        "net.ipv4.tcp_rmem": "4096\t131072  6291456",
        "kernel.pid_max": 65536,
        "fs.file-max": "9223372036854775807",
        "net.netfilter.nf_conntrack_max": 262144,
        "net.core.somaxconn": 4096,
    }
    commands, skipped = ops.sysctl_commands(values, CURRENT)
    assert [str(c) for c in commands] == [
        "sysctl -q -w net.ipv4.ip_forward=1",
        "sysctl -q -w vm.swappiness=10",
    ]
    assert skipped == [
        "kernel.pid_max (read-only here: 4194304, wanted 65536)",
        "net.core.somaxconn (absent)",
        "net.netfilter.nf_conntrack_max (absent)",
    ]


def test_sysctl_converged_is_silent():
    values = {"vm.swappiness": "60", "kernel.pid_max": 4194304, "net.ipv4.ip_forward": 0}
    assert ops.sysctl_commands(values, CURRENT) == ([], [])
    assert ops.sysctl_commands({}, CURRENT) == ([], [])


def test_sysctl_normalises_whitespace_in_the_written_value():
    values = {"net.ipv4.tcp_rmem": " 4096  87380\t6291456 "}
    commands, skipped = ops.sysctl_commands(values, CURRENT)
    assert [str(c) for c in commands] == ["sysctl -q -w net.ipv4.tcp_rmem=4096 87380 6291456"]
    assert skipped == []


# config_file

CONTENT = "deploy ALL=(ALL) NOPASSWD: /usr/bin/systemctl\n"
ROOT_440 = {"user": "root", "group": "root", "mode": 440}


def test_config_file_same_content_and_owner_is_up_to_date():
    action = ops.config_file_action(
        "/etc/sudoers.d/90-deploy", CONTENT, sha(CONTENT), ROOT_440, "root", "root", "440"
    )
    assert action == ("up to date", [])


def test_config_file_mode_with_a_leading_zero_is_the_same_mode():
    info = {"user": "root", "group": "redis", "mode": 640}
    action = ops.config_file_action(
        "/etc/r.conf", CONTENT, sha(CONTENT), info, "root", "redis", "0640"
    )
    assert action == ("up to date", [])


def test_config_file_same_content_wrong_mode_is_chmod_only():
    info = {"user": "root", "group": "root", "mode": 644}
    action, fixes = ops.config_file_action(
        "/etc/sudoers.d/90-deploy", CONTENT, sha(CONTENT), info, "root", "root", "440"
    )
    assert action == "fix"
    assert [str(c) for c in fixes] == ["chmod 440 /etc/sudoers.d/90-deploy"]


def test_config_file_same_content_wrong_owner_is_chown_only():
    info = {"user": "root", "group": "root", "mode": 640}
    action, fixes = ops.config_file_action(
        "/etc/redis/redis.conf", CONTENT, sha(CONTENT), info, "redis", "redis", "640"
    )
    assert action == "fix"
    assert [str(c) for c in fixes] == ["chown redis:redis /etc/redis/redis.conf"]


def test_config_file_same_content_wrong_owner_and_mode():
    info = {"user": "app", "group": "app", "mode": 600}
    action, fixes = ops.config_file_action(
        "/etc/x.conf", CONTENT, sha(CONTENT), info, "root", "app", "644"
    )
    assert action == "fix"
    assert [str(c) for c in fixes] == ["chown root:app /etc/x.conf", "chmod 644 /etc/x.conf"]


@pytest.mark.parametrize("current_sha", [None, sha("old content\n"), ""])
def test_config_file_other_or_no_content_is_a_replace(current_sha):
    action = ops.config_file_action(
        "/etc/sudoers.d/90-deploy", CONTENT, current_sha, ROOT_440, "root", "root", "440"
    )
    assert action == ("replace", [])


def test_config_file_replace_with_validation():
    commands = ops.config_file_commands(
        dest="/etc/sudoers.d/90-deploy",
        content=CONTENT,
        user="root",
        group="root",
        mode="440",
        validate="visudo -cqf {staged}",
        staged="/etc/sudoers.d/90-deploy.galion-new",
        parent_exists=True,
    )
    assert raw(commands) == [
        "install -m 0600 -o root -g root /dev/null /etc/sudoers.d/90-deploy.galion-new",
        ("upload", "/etc/sudoers.d/90-deploy.galion-new", None, CONTENT),
        (
            "sh -c 'if ! ( visudo -cqf /etc/sudoers.d/90-deploy.galion-new ); then "
            "rm -f /etc/sudoers.d/90-deploy.galion-new; "
            "echo '\"'\"'validation failed, live file untouched: /etc/sudoers.d/90-deploy'\"'\"' "
            ">&2; exit 1; fi'"
        ),
        (
            "sh -c 'chown root:root /etc/sudoers.d/90-deploy.galion-new "
            "&& chmod 440 /etc/sudoers.d/90-deploy.galion-new "
            "&& mv -f /etc/sudoers.d/90-deploy.galion-new /etc/sudoers.d/90-deploy'"
        ),
    ]


def test_config_file_replace_through_sudo_into_a_new_directory():
    commands = ops.config_file_commands(
        dest="/etc/galion/app.env",
        content="APP_ENV=production\n",
        user="app",
        group="app",
        mode="600",
        validate=None,
        staged="/etc/galion/app.env.galion-new",
        parent_exists=False,
        sudo_user="deploy",
    )
    assert raw(commands) == [
        "install -d -m 0755 /etc/galion",
        "install -d -m 0700 -o deploy /var/tmp/galion-upload-deploy",
        "install -m 0600 -o app -g app /dev/null /etc/galion/app.env.galion-new",
        (
            "upload",
            "/etc/galion/app.env.galion-new",
            "/var/tmp/galion-upload-deploy/f0cfe4ac7c0029b4",
            "APP_ENV=production\n",
        ),
        (
            "sh -c 'chown app:app /etc/galion/app.env.galion-new "
            "&& chmod 600 /etc/galion/app.env.galion-new "
            "&& mv -f /etc/galion/app.env.galion-new /etc/galion/app.env'"
        ),
    ]


def test_upload_temp_path():
    assert ops.upload_temp_path("/etc/galion/app.env.galion-new", "deploy") == (
        "/var/tmp/galion-upload-deploy/f0cfe4ac7c0029b4"
    )
    assert ops.upload_temp_path("/etc/galion/app.env.galion-new", "root") == (
        "/var/tmp/galion-upload-root/f0cfe4ac7c0029b4"
    )


def test_private_upload_creates_the_file_private_before_writing_it():
    commands = ops.private_upload_commands("s3cr3t\n", "/etc/x.key", "root", "ssl-cert")
    assert raw(commands) == [
        "install -m 0600 -o root -g ssl-cert /dev/null /etc/x.key",
        ("upload", "/etc/x.key", None, "s3cr3t\n"),
    ]


def test_secret_content_is_in_no_command_string():
    secret = "REDIS_PASSWORD_VALUE_8f3b2c1d"
    content = f"requirepass {secret}\n"
    commands = ops.config_file_commands(
        "/etc/redis/redis.conf",
        content,
        "redis",
        "redis",
        "640",
        "test -s {staged}",
        "/etc/redis/redis.conf.galion-new",
        False,
        "deploy",
    )
    uploads = [c for c in commands if isinstance(c, FileUploadCommand)]
    assert [u.src.getvalue() for u in uploads] == [content]
    for command in commands:
        assert secret not in str(command)
        assert secret not in repr(command)
        if isinstance(command, StringCommand):
            assert secret not in command.get_raw_value()


def _current_user_group():
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


@pytest.mark.parametrize("check,staged_left", [("true", True), ("grep -q good {staged}", True)])
def test_validate_wrapper_keeps_a_valid_staged_file(tmp_path, check, staged_left):
    staged, live = tmp_path / "app.conf.galion-new", tmp_path / "app.conf"
    staged.write_text("good\n")
    command = ops.validate_command(check, str(staged), str(live))
    result = subprocess.run(
        command.get_raw_value(), shell=True, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert staged.exists() is staged_left


def test_validate_wrapper_removes_a_bad_staged_file_and_fails(tmp_path):
    staged, live = tmp_path / "app.conf.galion-new", tmp_path / "app.conf"
    staged.write_text("bad\n")
    live.write_text("live\n")
    command = ops.validate_command("grep -q good {staged}", str(staged), str(live))
    result = subprocess.run(
        command.get_raw_value(), shell=True, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert result.stderr == f"validation failed, live file untouched: {live}\n"
    assert not staged.exists()
    assert live.read_text() == "live\n"


def test_install_command_moves_the_staged_file_into_place(tmp_path):
    user, group = _current_user_group()
    staged, live = tmp_path / "app.conf.galion-new", tmp_path / "app.conf"
    staged.write_text("new\n")
    live.write_text("old\n")
    command = ops.install_command(str(staged), str(live), user, group, "640")
    subprocess.run(command.get_raw_value(), shell=True, check=True)
    assert not staged.exists()
    assert live.read_text() == "new\n"
    assert oct(live.stat().st_mode & 0o777) == "0o640"


def test_install_command_string():
    command = ops.install_command("/etc/a.conf.new", "/etc/a.conf", "root", "adm", "0640")
    assert command.get_raw_value() == (
        "sh -c 'chown root:adm /etc/a.conf.new && chmod 0640 /etc/a.conf.new "
        "&& mv -f /etc/a.conf.new /etc/a.conf'"
    )


# postgres_sql

SECRET_SQL = "alter role app password 'SCRAM-SHA-256$4096:abc';"


def test_sql_file_path_is_named_by_database_and_statements():
    assert ops.sql_file_path(SECRET_SQL, "app") == "/var/lib/galion/sql/9b9c9bdeae11397d.sql"
    assert ops.sql_file_path("select 1;", "my db") == "/var/lib/galion/sql/bc1b1c90963443f9.sql"


def test_run_sql_file_command():
    command = ops.run_sql_file_command("app", "/var/lib/galion/sql/9b9c9bdeae11397d.sql")
    assert command.get_raw_value() == (
        "sh -c 'runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 --single-transaction "
        "-d app -f /var/lib/galion/sql/9b9c9bdeae11397d.sql; r=$?; "
        "rm -f /var/lib/galion/sql/9b9c9bdeae11397d.sql; exit $r'"
    )


def test_run_sql_file_command_quotes_the_database():
    command = ops.run_sql_file_command("my db", "/var/lib/galion/sql/bc1b1c90963443f9.sql")
    assert command.get_raw_value() == (
        "sh -c 'runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 --single-transaction "
        "-d '\"'\"'my db'\"'\"' -f /var/lib/galion/sql/bc1b1c90963443f9.sql; r=$?; "
        "rm -f /var/lib/galion/sql/bc1b1c90963443f9.sql; exit $r'"
    )


def test_postgres_sql_commands_through_sudo():
    commands = ops.postgres_sql_commands(SECRET_SQL, "app", "deploy")
    assert raw(commands) == [
        "install -d -m 0700 -o postgres -g postgres /var/lib/galion/sql",
        "install -d -m 0700 -o deploy /var/tmp/galion-upload-deploy",
        (
            "install -m 0600 -o postgres -g postgres /dev/null "
            "/var/lib/galion/sql/9b9c9bdeae11397d.sql"
        ),
        (
            "upload",
            "/var/lib/galion/sql/9b9c9bdeae11397d.sql",
            "/var/tmp/galion-upload-deploy/21d15bf4783a8c5e",
            SECRET_SQL,
        ),
        (
            "sh -c 'runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 --single-transaction "
            "-d app -f /var/lib/galion/sql/9b9c9bdeae11397d.sql; r=$?; "
            "rm -f /var/lib/galion/sql/9b9c9bdeae11397d.sql; exit $r'"
        ),
    ]
    for command in commands:
        assert "SCRAM" not in str(command)


def test_postgres_sql_commands_without_sudo():
    assert raw(ops.postgres_sql_commands("select 1;", "postgres"))[:3] == [
        "install -d -m 0700 -o postgres -g postgres /var/lib/galion/sql",
        (
            "install -m 0600 -o postgres -g postgres /dev/null "
            "/var/lib/galion/sql/3b35f2d1c772c225.sql"
        ),
        ("upload", "/var/lib/galion/sql/3b35f2d1c772c225.sql", None, "select 1;"),
    ]


def test_postgres_sql_is_declared_non_idempotent():
    # pyinfra's @operation sets is_idempotent on the function; functools.wraps copies it.
    assert ops.postgres_sql.is_idempotent is False
    assert ops.postgres_sql._inner.is_idempotent is False
    assert "always a change" in " ".join(ops.postgres_sql.__doc__.split())


@pytest.mark.parametrize("op", [ops.config_file, ops.sysctl_values, ops.ufw_rules])
def test_the_other_operations_stay_idempotent(op):
    assert op.is_idempotent is True
    assert op._inner.is_idempotent is True


def test_ufw_refusal_is_not_fooled_by_a_port_that_only_contains_the_ssh_port():
    """`allow 2222/tcp` or a rule for an office range does not keep port 22 open."""
    with pytest.raises(OperationError):
        ops.ufw_check_port(["allow 2222/tcp comment 'x'"], 22)
    with pytest.raises(OperationError):
        ops.ufw_check_port(["allow from 10.0.22.0/24 to any port 443 proto tcp"], 22)
    with pytest.raises(OperationError):
        ops.ufw_check_port(["deny 22/tcp"], 22)
    assert ops.ufw_check_port(["limit 22/tcp comment 'galion: ssh'"], 22) is None
    assert ops.ufw_check_port(["allow 2222/tcp"], 2222) is None


def test_one_host_at_a_time_starts_on_no_host_after_one_failed():
    """The guard around a serial step: a host whose command started and never finished
    (it failed) stops the step on every later host, naming it; a finished one does not."""
    key = "unit test step"
    ops._start(key, "app1")
    ops._done(key, "app1")
    ops._start(key, "app2")  # app1 finished: app2 goes
    with pytest.raises(OperationError, match="it failed on app2 first"):
        ops._start(key, "app3")  # app2 never finished
    ops._start("another step", "app3")  # other steps are not held back
