"""galion.facts.files: paths, marked files, ini-style settings, failure markers.

Commands as literal strings, parsers fed recorded output (see test_facts.py).
"""

import subprocess

from galion.facts import files
from tests.unit.fact_coverage import covers


@covers(files.FilesMarked)
class TestFilesMarked:
    def test_only_files_holding_the_marker_whose_names_match(self, tmp_path):
        """Run for real in a scratch directory."""
        from operations.nginx_tls import retire

        (tmp_path / "20-vhost-a.conf").write_text(retire.MANAGED + ": a\n")
        (tmp_path / "20-vhost-b.conf.galion-retired").write_text(retire.MANAGED + "\n")
        (tmp_path / "20-vhost-by-hand.conf").write_text("server {}\n")
        (tmp_path / "notes.txt").write_text(retire.MANAGED + "\n")
        fact = files.FilesMarked()
        command = fact.command(str(tmp_path), "*.conf*", retire.MANAGED)
        out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
        assert sorted(fact.process(out.stdout.splitlines())) == [
            str(tmp_path / "20-vhost-a.conf"),
            str(tmp_path / "20-vhost-b.conf.galion-retired"),
        ]

    def test_an_empty_or_missing_directory_is_no_file(self, tmp_path):
        fact = files.FilesMarked()
        command = fact.command(str(tmp_path / "missing"), "*.conf*", "# Managed")
        out = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
        assert out.returncode == 0 and fact.process(out.stdout.splitlines()) == []


@covers(files.PathExists)
class TestPathExists:
    def test_command(self):
        assert files.PathExists().command("/etc/redis/redis.conf") == (
            "test -e /etc/redis/redis.conf && echo yes || echo no"
        )

    def test_process(self):
        assert files.PathExists().process(["yes"]) is True
        assert files.PathExists().process(["no"]) is False
        assert files.PathExists().process([]) is False


@covers(files.ConfigSettings)
class TestConfigSettings:
    def test_command(self):
        fact = files.ConfigSettings()
        assert fact.command("/etc/pgbouncer/pgbouncer.ini", ("listen_addr", "listen_port")) == (
            "grep -E '^[[:space:]]*(listen_addr|listen_port)[[:space:]]*=' "
            "/etc/pgbouncer/pgbouncer.ini 2>/dev/null || true"
        )

    def test_parses_what_grep_prints(self):
        output = ["listen_addr = 127.0.0.1,10.0.0.4", "listen_port = 6432"]
        assert files.ConfigSettings().process(output) == {
            "listen_addr": "127.0.0.1,10.0.0.4",
            "listen_port": "6432",
        }

    def test_missing_file_is_empty(self):
        assert files.ConfigSettings().default() == {}

    def test_first_value_wins_and_comments_do_not_count(self):
        lines = ["; listen_port = 1", "listen_port = 6432", "listen_port = 7000", "x"]
        assert files.parse_settings(lines) == {"listen_port": "6432"}
        assert files.parse_settings(lines, ("listen_addr",)) == {}


@covers(files.SecondsSinceFailure)
class TestSecondsSinceFailure:
    def test_command(self):
        assert files.SecondsSinceFailure().command("/var/lib/galion/acme-failed/x") == (
            'test -f /var/lib/galion/acme-failed/x && echo "$(date +%s) '
            '$(head -c 32 /var/lib/galion/acme-failed/x)" || true'
        )

    def test_seconds_or_none(self):
        assert files.SecondsSinceFailure().process(["1700000420 1700000000"]) == 420
        assert files.SecondsSinceFailure().process([]) is None
        assert files.SecondsSinceFailure().process(["1700000420"]) is None  # empty marker
        assert files.SecondsSinceFailure().process(["1700000420 garbage"]) is None

    def test_an_empty_marker_does_not_fail_the_command(self, tmp_path):
        marker = tmp_path / "marker"
        marker.write_text("")
        command = files.SecondsSinceFailure().command(str(marker))
        proc = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
        assert proc.returncode == 0
        assert files.SecondsSinceFailure().process(proc.stdout.splitlines()) is None
