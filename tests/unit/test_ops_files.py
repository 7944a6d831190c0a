"""galion.ops.files and uploads: config_file's decisions and commands as pure functions
(facts' values in, commands out), the staged file's validation and install run for real."""

import grp
import hashlib
import os
import pwd
import subprocess

import pytest
from pyinfra.api import StringCommand
from pyinfra.api.command import FileUploadCommand

from galion.ops import files, uploads
from tests.unit.op_commands import raw


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


CONTENT = "deploy ALL=(ALL) NOPASSWD: /usr/bin/systemctl\n"
ROOT_440 = {"user": "root", "group": "root", "mode": 440}


def test_config_file_same_content_and_owner_is_up_to_date():
    action = files.config_file_action(
        "/etc/sudoers.d/90-deploy", CONTENT, sha(CONTENT), ROOT_440, "root", "root", "440"
    )
    assert action == ("up to date", [])


def test_config_file_mode_with_a_leading_zero_is_the_same_mode():
    info = {"user": "root", "group": "redis", "mode": 640}
    action = files.config_file_action(
        "/etc/r.conf", CONTENT, sha(CONTENT), info, "root", "redis", "0640"
    )
    assert action == ("up to date", [])


@pytest.mark.parametrize(
    "dest, info, want, fixes",
    [
        (
            "/etc/sudoers.d/90-deploy",
            {"user": "root", "group": "root", "mode": 644},
            ("root", "root", "440"),
            ["chmod 440 /etc/sudoers.d/90-deploy"],
        ),
        (
            "/etc/redis/redis.conf",
            {"user": "root", "group": "root", "mode": 640},
            ("redis", "redis", "640"),
            ["chown redis:redis /etc/redis/redis.conf"],
        ),
        (
            "/etc/x.conf",
            {"user": "app", "group": "app", "mode": 600},
            ("root", "app", "644"),
            ["chown root:app /etc/x.conf", "chmod 644 /etc/x.conf"],
        ),
    ],
    ids=["wrong_mode_is_chmod_only", "wrong_owner_is_chown_only", "wrong_owner_and_mode"],
)
def test_config_file_same_content(dest, info, want, fixes):
    action, commands = files.config_file_action(dest, CONTENT, sha(CONTENT), info, *want)
    assert action == "fix"
    assert [str(c) for c in commands] == fixes


@pytest.mark.parametrize("current_sha", [None, sha("old content\n"), ""])
def test_config_file_other_or_no_content_is_a_replace(current_sha):
    action = files.config_file_action(
        "/etc/sudoers.d/90-deploy", CONTENT, current_sha, ROOT_440, "root", "root", "440"
    )
    assert action == ("replace", [])


def test_config_file_replace_with_validation():
    dest = "/etc/sudoers.d/90-deploy"
    # dest, content, user, group, mode, validate, staged, parent_exists (, sudo_user)
    commands = files.config_file_commands(
        dest, CONTENT, "root", "root", "440", "visudo -cqf {staged}", f"{dest}.galion-new", True
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
    dest, content = "/etc/galion/app.env", "APP_ENV=production\n"
    commands = files.config_file_commands(
        dest, content, "app", "app", "600", None, f"{dest}.galion-new", False, "deploy"
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
    assert uploads.upload_temp_path("/etc/galion/app.env.galion-new", "deploy") == (
        "/var/tmp/galion-upload-deploy/f0cfe4ac7c0029b4"
    )
    assert uploads.upload_temp_path("/etc/galion/app.env.galion-new", "root") == (
        "/var/tmp/galion-upload-root/f0cfe4ac7c0029b4"
    )


def test_private_upload_creates_the_file_private_before_writing_it():
    commands = uploads.private_upload_commands("s3cr3t\n", "/etc/x.key", "root", "ssl-cert")
    assert raw(commands) == [
        "install -m 0600 -o root -g ssl-cert /dev/null /etc/x.key",
        ("upload", "/etc/x.key", None, "s3cr3t\n"),
    ]


def test_secret_content_is_in_no_command_string():
    secret = "REDIS_PASSWORD_VALUE_8f3b2c1d"
    content = f"requirepass {secret}\n"
    commands = files.config_file_commands(
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
    command = files.validate_command(check, str(staged), str(live))
    result = subprocess.run(
        command.get_raw_value(), shell=True, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert staged.exists() is staged_left


def test_validate_wrapper_removes_a_bad_staged_file_and_fails(tmp_path):
    staged, live = tmp_path / "app.conf.galion-new", tmp_path / "app.conf"
    staged.write_text("bad\n")
    live.write_text("live\n")
    command = files.validate_command("grep -q good {staged}", str(staged), str(live))
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
    command = files.install_command(str(staged), str(live), user, group, "640")
    subprocess.run(command.get_raw_value(), shell=True, check=True)
    assert not staged.exists()
    assert live.read_text() == "new\n"
    assert oct(live.stat().st_mode & 0o777) == "0o640"


def test_install_command_string():
    command = files.install_command("/etc/a.conf.new", "/etc/a.conf", "root", "adm", "0640")
    assert command.get_raw_value() == (
        "sh -c 'chown root:adm /etc/a.conf.new && chmod 0640 /etc/a.conf.new "
        "&& mv -f /etc/a.conf.new /etc/a.conf'"
    )
