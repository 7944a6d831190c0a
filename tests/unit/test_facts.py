"""galion.facts without a host: commands as literal strings, parsers fed recorded output.

The recorded lines are what the commands print on Debian 12 / 13 (OpenSSH 9.2 / 10.0,
ufw 0.36, PostgreSQL 15 / 17, pgBackRest 2.5x, OpenSSL 3).
"""

import inspect
import json
import subprocess

import pytest
from pyinfra.api import FactBase

from galion import facts
from tests import rollout_rig

TESTED = set()


def covers(cls):
    """Mark a test class as covering the fact class of the same name."""

    def mark(test_cls):
        TESTED.add(cls)
        return test_cls

    return mark


def test_every_fact_class_has_tests():
    declared = {
        obj
        for name, obj in inspect.getmembers(facts, inspect.isclass)
        if issubclass(obj, FactBase) and obj.__module__ == facts.__name__ and name[0] != "_"
    }
    assert declared, "no fact class found: the scan is broken"
    assert declared == TESTED


def test_fact_names_stay_those_pyinfra_knows():
    # pyinfra names facts after module and class; a rename changes its output and cache keys.
    assert facts.UfwStatus.name == "galion.facts.UfwStatus"
    assert facts.PgbackrestStanza.name == "galion.facts.PgbackrestStanza"


def test_default_is_a_fresh_copy_each_time():
    first = facts.UfwStatus().default()
    first["active"] = True
    first["incoming"] = "allow"
    assert facts.UfwStatus().default() == {"active": False}
    rules = facts.UfwAddedRules().default()
    rules.append("allow 22/tcp")
    assert facts.UfwAddedRules().default() == []


@pytest.mark.parametrize(
    "cls",
    [
        facts.SysctlState,
        facts.SystemdUnitEnabled,
        facts.PathExists,
        facts.ContainerVirtualization,
        facts.MemoryTotalMb,
        facts.AptCandidate,
        facts.CertbotLineage,
    ],
)
def test_facts_without_a_required_command_default_to_none(cls):
    assert cls().requires_command() is None
    assert cls().requires_command("any", arg="any") is None
    assert cls().default() is None


@covers(facts.SysctlState)
class TestSysctlState:
    def test_command(self):
        assert facts.SysctlState().command(["net.ipv4.ip_forward", "kernel.pid_max"]) == (
            "for k in net.ipv4.ip_forward kernel.pid_max; do p=/proc/sys/$(echo $k | tr . /); "
            'if [ -r "$p" ]; then w=0; [ -w "$p" ] && w=1; '
            'printf "%s\\t%s\\t%s\\n" "$k" "$w" "$(tr "\\t" " " < "$p")"; '
            'else printf "%s\\t-\\t\\n" "$k"; fi; done'
        )

    def test_process_writable_read_only_and_absent(self):
        output = [
            "net.ipv4.ip_forward\t1\t0",
            # /proc/sys/net/ipv4/tcp_rmem holds tabs; the command turns them into spaces.
            "net.ipv4.tcp_rmem\t1\t4096 131072  6291456",
            "kernel.pid_max\t0\t4194304",
            "vm.overcommit_memory\t0\t0",
            "net.netfilter.nf_conntrack_max\t-\t",
        ]
        assert facts.SysctlState().process(output) == {
            "net.ipv4.ip_forward": {"value": "0", "writable": True},
            "net.ipv4.tcp_rmem": {"value": "4096 131072 6291456", "writable": True},
            "kernel.pid_max": {"value": "4194304", "writable": False},
            "vm.overcommit_memory": {"value": "0", "writable": False},
            "net.netfilter.nf_conntrack_max": {"value": None, "writable": False},
        }

    def test_absent_key_without_trailing_tab(self):
        assert facts.SysctlState().process(["fs.inotify.max_user_watches\t-"]) == {
            "fs.inotify.max_user_watches": {"value": None, "writable": False}
        }

    def test_empty_output(self):
        assert facts.SysctlState().process([]) == {}


@covers(facts.UfwAddedRules)
class TestUfwAddedRules:
    def test_command_and_requirements(self):
        fact = facts.UfwAddedRules()
        assert fact.command() == "ufw show added"
        assert fact.requires_command() == "ufw"
        assert fact.default() == []

    def test_process(self):
        output = [
            "Added user rules (see 'ufw status' for running firewall):",
            "ufw allow from 10.8.0.0/24",
            "ufw limit 22/tcp",
            "ufw allow 80/tcp",
            "ufw allow 443/tcp",
            "ufw allow from 10.8.0.0/24 to any port 5432 proto tcp",
        ]
        assert facts.UfwAddedRules().process(output) == [
            "allow from 10.8.0.0/24",
            "limit 22/tcp",
            "allow 80/tcp",
            "allow 443/tcp",
            "allow from 10.8.0.0/24 to any port 5432 proto tcp",
        ]

    def test_no_rules(self):
        output = ["Added user rules (see 'ufw status' for running firewall):", "(None)"]
        assert facts.UfwAddedRules().process(output) == []
        assert facts.UfwAddedRules().process([]) == []


UFW_ACTIVE = """\
Status: active
Logging: on (low)
Default: deny (incoming), allow (outgoing), deny (routed)
New profiles: skip

To                         Action      From
--                         ------      ----
22/tcp                     LIMIT IN    Anywhere
80/tcp                     ALLOW IN    Anywhere
443/tcp                    ALLOW IN    Anywhere
22/tcp (v6)                LIMIT IN    Anywhere (v6)
80/tcp (v6)                ALLOW IN    Anywhere (v6)
443/tcp (v6)               ALLOW IN    Anywhere (v6)
"""


@covers(facts.UfwStatus)
class TestUfwStatus:
    def test_command_and_requirements(self):
        fact = facts.UfwStatus()
        assert fact.command() == "ufw status verbose"
        assert fact.requires_command() == "ufw"
        assert fact.requires_command("x", y=1) == "ufw"
        assert fact.default() == {"active": False}

    def test_active(self):
        assert facts.UfwStatus().process(UFW_ACTIVE.splitlines()) == {
            "active": True,
            "incoming": "deny",
            "outgoing": "allow",
            "routed": "deny",
        }

    def test_routing_disabled(self):
        output = [
            "Status: active",
            "Logging: on (low)",
            "Default: reject (incoming), allow (outgoing), disabled (routed)",
            "New profiles: skip",
        ]
        assert facts.UfwStatus().process(output) == {
            "active": True,
            "incoming": "reject",
            "outgoing": "allow",
            "routed": "disabled",
        }

    def test_inactive(self):
        # An inactive ufw prints only this line, not its defaults.
        assert facts.UfwStatus().process(["Status: inactive"]) == {"active": False}

    def test_empty_output(self):
        assert facts.UfwStatus().process([]) == {"active": False}


SSH_Q_DEBIAN_13 = """\
== kex
diffie-hellman-group1-sha1
diffie-hellman-group14-sha1
diffie-hellman-group14-sha256
diffie-hellman-group16-sha512
diffie-hellman-group18-sha512
diffie-hellman-group-exchange-sha1
diffie-hellman-group-exchange-sha256
ecdh-sha2-nistp256
ecdh-sha2-nistp384
ecdh-sha2-nistp521
curve25519-sha256
curve25519-sha256@libssh.org
sntrup761x25519-sha512
sntrup761x25519-sha512@openssh.com
mlkem768x25519-sha256
== cipher
3des-cbc
aes128-cbc
aes192-cbc
aes256-cbc
aes128-ctr
aes192-ctr
aes256-ctr
aes128-gcm@openssh.com
aes256-gcm@openssh.com
chacha20-poly1305@openssh.com
== mac
hmac-sha1
hmac-sha1-96
hmac-sha2-256
hmac-sha2-512
hmac-md5
hmac-md5-96
umac-64@openssh.com
umac-128@openssh.com
hmac-sha1-etm@openssh.com
hmac-sha1-96-etm@openssh.com
hmac-sha2-256-etm@openssh.com
hmac-sha2-512-etm@openssh.com
hmac-md5-etm@openssh.com
hmac-md5-96-etm@openssh.com
umac-64-etm@openssh.com
umac-128-etm@openssh.com
== key
ssh-ed25519
ssh-ed25519-cert-v01@openssh.com
sk-ssh-ed25519@openssh.com
sk-ssh-ed25519-cert-v01@openssh.com
ecdsa-sha2-nistp256
ecdsa-sha2-nistp256-cert-v01@openssh.com
ecdsa-sha2-nistp384
ecdsa-sha2-nistp384-cert-v01@openssh.com
ecdsa-sha2-nistp521
ecdsa-sha2-nistp521-cert-v01@openssh.com
sk-ecdsa-sha2-nistp256@openssh.com
sk-ecdsa-sha2-nistp256-cert-v01@openssh.com
webauthn-sk-ecdsa-sha2-nistp256@openssh.com
ssh-rsa
ssh-rsa-cert-v01@openssh.com
rsa-sha2-256
rsa-sha2-256-cert-v01@openssh.com
rsa-sha2-512
rsa-sha2-512-cert-v01@openssh.com
"""


@covers(facts.OpensshAlgorithms)
class TestOpensshAlgorithms:
    def test_command_and_requirements(self):
        fact = facts.OpensshAlgorithms()
        assert fact.command() == 'for q in kex cipher mac key; do echo "== $q"; ssh -Q $q; done'
        assert fact.requires_command() == "ssh"
        assert fact.default() == {}

    def test_process(self):
        found = facts.OpensshAlgorithms().process(SSH_Q_DEBIAN_13.splitlines())
        assert list(found) == ["kex", "cipher", "mac", "key"]
        assert len(found["kex"]) == 15
        assert found["kex"][-1] == "mlkem768x25519-sha256"
        assert "sntrup761x25519-sha512@openssh.com" in found["kex"]
        assert found["cipher"][0] == "3des-cbc"
        assert found["cipher"][-1] == "chacha20-poly1305@openssh.com"
        assert len(found["mac"]) == 16
        assert "ssh-dss" not in found["key"]
        assert found["key"][:2] == ["ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com"]

    def test_blank_lines_and_a_query_with_no_answer(self):
        output = ["== kex", "curve25519-sha256", "", "  ", "== cipher", "== mac", "hmac-sha2-256 "]
        assert facts.OpensshAlgorithms().process(output) == {
            "kex": ["curve25519-sha256"],
            "cipher": [],
            "mac": ["hmac-sha2-256"],
        }

    def test_lines_before_any_header_are_ignored(self):
        output = ["unknown option -- Q", "== kex", "curve25519-sha256"]
        assert facts.OpensshAlgorithms().process(output) == {"kex": ["curve25519-sha256"]}

    def test_empty_output(self):
        assert facts.OpensshAlgorithms().process([]) == {}


@covers(facts.SystemdUnitEnabled)
class TestSystemdUnitEnabled:
    def test_command(self):
        assert facts.SystemdUnitEnabled().command("fail2ban.service") == (
            "systemctl is-enabled fail2ban.service 2>/dev/null || true"
        )

    @pytest.mark.parametrize("state", ["enabled", "disabled", "masked", "static", "indirect"])
    def test_process(self, state):
        assert facts.SystemdUnitEnabled().process([state]) == state

    def test_unknown_unit_prints_nothing(self):
        # "Failed to get unit file state ..." goes to stderr, which the command drops.
        assert facts.SystemdUnitEnabled().process([]) == "missing"
        assert facts.SystemdUnitEnabled().process([""]) == "missing"


@covers(facts.FilesMarked)
class TestFilesMarked:
    def test_only_files_holding_the_marker_whose_names_match(self, tmp_path):
        """Run for real in a scratch directory."""
        from operations import nginx_tls

        (tmp_path / "20-vhost-a.conf").write_text(nginx_tls.MANAGED + ": a\n")
        (tmp_path / "20-vhost-b.conf.galion-retired").write_text(nginx_tls.MANAGED + "\n")
        (tmp_path / "20-vhost-by-hand.conf").write_text("server {}\n")
        (tmp_path / "notes.txt").write_text(nginx_tls.MANAGED + "\n")
        fact = facts.FilesMarked()
        command = fact.command(str(tmp_path), "*.conf*", nginx_tls.MANAGED)
        out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
        assert sorted(fact.process(out.stdout.splitlines())) == [
            str(tmp_path / "20-vhost-a.conf"),
            str(tmp_path / "20-vhost-b.conf.galion-retired"),
        ]

    def test_an_empty_or_missing_directory_is_no_file(self, tmp_path):
        fact = facts.FilesMarked()
        command = fact.command(str(tmp_path / "missing"), "*.conf*", "# Managed")
        out = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
        assert out.returncode == 0 and fact.process(out.stdout.splitlines()) == []


@covers(facts.PathExists)
class TestPathExists:
    def test_command(self):
        assert facts.PathExists().command("/etc/redis/redis.conf") == (
            "test -e /etc/redis/redis.conf && echo yes || echo no"
        )

    def test_process(self):
        assert facts.PathExists().process(["yes"]) is True
        assert facts.PathExists().process(["no"]) is False
        assert facts.PathExists().process([]) is False


@covers(facts.ContainerVirtualization)
class TestContainerVirtualization:
    def test_command(self):
        assert facts.ContainerVirtualization().command() == (
            "systemd-detect-virt --container 2>/dev/null || true"
        )

    @pytest.mark.parametrize("kind", ["none", "lxc", "systemd-nspawn", "openvz", "docker"])
    def test_process(self, kind):
        assert facts.ContainerVirtualization().process([kind]) == kind

    def test_no_systemd_detect_virt(self):
        assert facts.ContainerVirtualization().process([]) == "none"
        assert facts.ContainerVirtualization().process(["  "]) == "none"


class FakeHost:
    def __init__(self, virt):
        self.virt = virt
        self.asked = []

    def get_fact(self, cls, **kwargs):
        self.asked.append(cls)
        return self.virt


@pytest.mark.parametrize(
    "virt,expected", [("none", False), ("lxc", True), ("systemd-nspawn", True), ("podman", True)]
)
def test_in_container(monkeypatch, virt, expected):
    fake = FakeHost(virt)
    monkeypatch.setattr(facts, "host", fake)
    assert facts.in_container() is expected
    assert fake.asked == [facts.ContainerVirtualization]


# pg_lsclusters --no-header: a primary, a standby and a stopped cluster (one line each).
PG_LSCLUSTERS = """\
15  main    5432 online          postgres /var/lib/postgresql/15/main    \
/var/log/postgresql/postgresql-15-main.log
17  replica 5433 online,recovery postgres /var/lib/postgresql/17/replica \
/var/log/postgresql/postgresql-17-replica.log
17  old     5434 down            postgres /srv/pg/17/old                 \
/var/log/postgresql/postgresql-17-old.log
"""


@covers(facts.PostgresClusters)
class TestPostgresClusters:
    def test_command_and_requirements(self):
        fact = facts.PostgresClusters()
        assert fact.command() == "pg_lsclusters --no-header"
        assert fact.requires_command() == "pg_lsclusters"
        assert fact.default() == []

    def test_process(self):
        output = PG_LSCLUSTERS.splitlines()
        assert facts.PostgresClusters().process(output) == [
            {
                "version": "15",
                "name": "main",
                "port": 5432,
                "status": "online",
                "owner": "postgres",
                "data": "/var/lib/postgresql/15/main",
            },
            {
                "version": "17",
                "name": "replica",
                "port": 5433,
                "status": "online,recovery",
                "owner": "postgres",
                "data": "/var/lib/postgresql/17/replica",
            },
            {
                "version": "17",
                "name": "old",
                "port": 5434,
                "status": "down",
                "owner": "postgres",
                "data": "/srv/pg/17/old",
            },
        ]

    def test_short_lines_are_skipped(self):
        assert facts.PostgresClusters().process(["", "15 main 5432 online"]) == []
        assert facts.PostgresClusters().process([]) == []


PSQL = "runuser -u postgres -- psql -X -q -AtF '\t' -d postgres -v ON_ERROR_STOP=1 "


@covers(facts.PostgresRoles)
class TestPostgresRoles:
    def test_command_and_requirements(self):
        fact = facts.PostgresRoles()
        assert fact.command() == (
            "runuser -u postgres -- psql -X -q -AtF '\t' -d postgres -v ON_ERROR_STOP=1 "
            '-c "select rolname, rolcanlogin, rolreplication, rolsuper, '
            "coalesce(rolpassword, '') from pg_authid\" 2>/dev/null || true"
        )
        assert fact.requires_command() == "psql"
        assert fact.default() == {}

    def test_process(self):
        verifier = (
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
            "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
            "EIGAsyqBQCvJyPRdiyiPLDfUXHtQ0tvbcf3gUwqNpkM="
        )
        output = [
            f"postgres\tt\tt\tt\t{verifier}",
            "pg_monitor\tf\tf\tf\t",
            f"app\tt\tf\tf\t{verifier}",
            "replicator\tt\tt\tf\t",
        ]
        assert facts.PostgresRoles().process(output) == {
            "postgres": {
                "login": True,
                "replication": True,
                "superuser": True,
                "verifier": verifier,
            },
            "pg_monitor": {
                "login": False,
                "replication": False,
                "superuser": False,
                "verifier": "",
            },
            "app": {"login": True, "replication": False, "superuser": False, "verifier": verifier},
            "replicator": {"login": True, "replication": True, "superuser": False, "verifier": ""},
        }

    def test_lines_without_five_fields_are_skipped(self):
        output = ["psql: error: connection to server on socket failed", "app\tt\tf\tf"]
        assert facts.PostgresRoles().process(output) == {}
        assert facts.PostgresRoles().process([]) == {}


@covers(facts.PostgresDatabases)
class TestPostgresDatabases:
    def test_command_and_requirements(self):
        fact = facts.PostgresDatabases()
        assert fact.command() == (
            "runuser -u postgres -- psql -X -q -AtF '\t' -d postgres -v ON_ERROR_STOP=1 "
            '-c "select datname, pg_get_userbyid(datdba) from pg_database" 2>/dev/null || true'
        )
        assert fact.requires_command() == "psql"
        assert fact.default() == {}

    def test_process(self):
        output = ["postgres\tpostgres", "app\tapp", "template1\tpostgres", "template0\tpostgres"]
        assert facts.PostgresDatabases().process(output) == {
            "postgres": "postgres",
            "app": "app",
            "template1": "postgres",
            "template0": "postgres",
        }

    def test_lines_without_a_tab_are_skipped(self):
        assert facts.PostgresDatabases().process(["", "garbage"]) == {}


@covers(facts.PostgresQuery)
class TestPostgresQuery:
    def test_command_and_requirements(self):
        fact = facts.PostgresQuery()
        assert fact.command("select 1") == (
            "runuser -u postgres -- psql -X -q -AtF '\t' -d postgres -v ON_ERROR_STOP=1 "
            '-c "select 1" 2>/dev/null || true'
        )
        assert fact.command("select extname from pg_extension", database="app") == (
            "runuser -u postgres -- psql -X -q -AtF '\t' -d app -v ON_ERROR_STOP=1 "
            '-c "select extname from pg_extension" 2>/dev/null || true'
        )
        assert fact.requires_command() == "psql"
        assert fact.default() == []

    def test_process(self):
        output = ["max_connections\t100", "shared_buffers\t16384", "wal_level\treplica", "x\t"]
        assert facts.PostgresQuery().process(output) == [
            ["max_connections", "100"],
            ["shared_buffers", "16384"],
            ["wal_level", "replica"],
            ["x", ""],
        ]
        assert facts.PostgresQuery().process(["t"]) == [["t"]]
        assert facts.PostgresQuery().process([]) == []


@covers(facts.MemoryTotalMb)
class TestMemoryTotalMb:
    def test_command(self):
        assert facts.MemoryTotalMb().command() == (
            "awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo"
        )

    def test_process(self):
        assert facts.MemoryTotalMb().process(["1967"]) == 1967
        assert facts.MemoryTotalMb().process(["15991"]) == 15991

    def test_non_numeric_output_is_an_error(self):
        with pytest.raises(ValueError):
            facts.MemoryTotalMb().process(["awk: cannot open /proc/meminfo"])


def _pgbackrest_info(*repos, stanza_code=0, stanza_message="ok"):
    """`pgbackrest info --output=json` as pgBackRest prints it: one line."""
    return json.dumps(
        [
            {
                "archive": [],
                "backup": [],
                "cipher": "aes-256-cbc",
                "db": [{"id": 1, "repo-key": 1, "system-id": 7316843561273472345, "version": "15"}],
                "name": "main",
                "repo": [
                    {"cipher": "aes-256-cbc", "key": key, "status": {"code": code, "message": msg}}
                    for key, code, msg in repos
                ],
                "status": {
                    "code": stanza_code,
                    "lock": {"archive": {"held": False}, "backup": {"held": False}},
                    "message": stanza_message,
                },
            }
        ],
        separators=(",", ":"),
    )


@covers(facts.PgbackrestStanza)
class TestPgbackrestStanza:
    def test_command_and_requirements(self):
        fact = facts.PgbackrestStanza()
        assert fact.command("main") == (
            "runuser -u postgres -- pgbackrest --stanza=main --output=json info "
            "2>/dev/null || echo '[]'"
        )
        assert fact.requires_command() == "pgbackrest"
        assert fact.requires_command(stanza="main") == "pgbackrest"
        assert fact.default() == {}

    def test_ok(self):
        output = [_pgbackrest_info((1, 0, "ok"), (2, 0, "ok"))]
        assert facts.PgbackrestStanza().process(output) == {1: (0, "ok"), 2: (0, "ok")}

    def test_missing_stanza(self):
        output = [
            _pgbackrest_info(
                (1, 1, "missing stanza path"), stanza_code=1, stanza_message="missing stanza path"
            )
        ]
        assert facts.PgbackrestStanza().process(output) == {1: (1, "missing stanza path")}

    def test_one_repo_in_error(self):
        message = "[ProtocolError] HTTP request failed with 403 (Forbidden)"
        output = [
            _pgbackrest_info(
                (1, 2, "no valid backups"),
                (2, 99, message),
                stanza_code=99,
                stanza_message="other",
            )
        ]
        assert facts.PgbackrestStanza().process(output) == {
            1: (2, "no valid backups"),
            2: (99, message),
        }

    def test_pretty_printed_json_over_several_lines(self):
        output = json.dumps(json.loads(_pgbackrest_info((1, 0, "ok"))), indent=2).splitlines()
        assert facts.PgbackrestStanza().process(output) == {1: (0, "ok")}

    def test_failure_prints_an_empty_list(self):
        assert facts.PgbackrestStanza().process(["[]"]) == {}

    def test_not_json(self):
        assert facts.PgbackrestStanza().process(["ERROR: [055]: unable to load info file"]) == {}
        assert facts.PgbackrestStanza().process([]) == {}

    def test_stanza_without_repo_list(self):
        assert facts.PgbackrestStanza().process(['[{"name":"main"}]']) == {}


@covers(facts.AptCandidate)
class TestAptCandidate:
    def test_command(self):
        assert facts.AptCandidate().command("certbot") == (
            "apt-cache policy certbot 2>/dev/null | awk '/Candidate:/ {print $2}'"
        )

    @pytest.mark.parametrize("version", ["2.1.0-4", "1.22.1-9+deb12u1", "4.0.0-2", "2:9.0.1378-2"])
    def test_process(self, version):
        assert facts.AptCandidate().process([version]) == version

    def test_no_candidate(self):
        assert facts.AptCandidate().process(["(none)"]) is None

    def test_unknown_package_prints_nothing(self):
        assert facts.AptCandidate().process([]) is None
        assert facts.AptCandidate().process([""]) is None


@covers(facts.CertbotLineage)
class TestCertbotLineage:
    def test_command(self):
        assert facts.CertbotLineage().command("galion.app") == (
            "test -f /etc/letsencrypt/live/galion.app/cert.pem && openssl x509 -noout -ext "
            "subjectAltName -in /etc/letsencrypt/live/galion.app/cert.pem || true"
        )

    def test_process(self):
        output = [
            "X509v3 Subject Alternative Name: ",
            "    DNS:www.galion.app, DNS:galion.app, DNS:api.galion.app",
        ]
        assert facts.CertbotLineage().process(output) == [
            "api.galion.app",
            "galion.app",
            "www.galion.app",
        ]

    def test_single_name(self):
        output = ["X509v3 Subject Alternative Name: ", "    DNS:galion.studio"]
        assert facts.CertbotLineage().process(output) == ["galion.studio"]

    def test_no_certificate_or_no_names(self):
        assert facts.CertbotLineage().process([]) is None
        assert facts.CertbotLineage().process(["No extensions matched"]) is None
        output = ["X509v3 Subject Alternative Name: ", "    IP Address:192.0.2.1"]
        assert facts.CertbotLineage().process(output) is None


def test_psql_facts_share_one_psql_call():
    for command in (
        facts.PostgresRoles().command(),
        facts.PostgresDatabases().command(),
        facts.PostgresQuery().command("select 1"),
    ):
        assert command.startswith(PSQL)


@covers(facts.ConfigSettings)
class TestConfigSettings:
    def test_command(self):
        fact = facts.ConfigSettings()
        assert fact.command("/etc/pgbouncer/pgbouncer.ini", ("listen_addr", "listen_port")) == (
            "grep -E '^[[:space:]]*(listen_addr|listen_port)[[:space:]]*=' "
            "/etc/pgbouncer/pgbouncer.ini 2>/dev/null || true"
        )

    def test_parses_what_grep_prints(self):
        output = ["listen_addr = 127.0.0.1,10.0.0.4", "listen_port = 6432"]
        assert facts.ConfigSettings().process(output) == {
            "listen_addr": "127.0.0.1,10.0.0.4",
            "listen_port": "6432",
        }

    def test_missing_file_is_empty(self):
        assert facts.ConfigSettings().default() == {}

    def test_first_value_wins_and_comments_do_not_count(self):
        lines = ["; listen_port = 1", "listen_port = 6432", "listen_port = 7000", "x"]
        assert facts.parse_settings(lines) == {"listen_port": "6432"}
        assert facts.parse_settings(lines, ("listen_addr",)) == {}


@covers(facts.SecondsSinceFailure)
class TestSecondsSinceFailure:
    def test_command(self):
        assert facts.SecondsSinceFailure().command("/var/lib/galion/acme-failed/x") == (
            'test -f /var/lib/galion/acme-failed/x && echo "$(date +%s) '
            '$(head -c 32 /var/lib/galion/acme-failed/x)" || true'
        )

    def test_seconds_or_none(self):
        assert facts.SecondsSinceFailure().process(["1700000420 1700000000"]) == 420
        assert facts.SecondsSinceFailure().process([]) is None
        assert facts.SecondsSinceFailure().process(["1700000420"]) is None  # empty marker
        assert facts.SecondsSinceFailure().process(["1700000420 garbage"]) is None

    def test_an_empty_marker_does_not_fail_the_command(self, tmp_path):
        marker = tmp_path / "marker"
        marker.write_text("")
        command = facts.SecondsSinceFailure().command(str(marker))
        proc = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
        assert proc.returncode == 0
        assert facts.SecondsSinceFailure().process(proc.stdout.splitlines()) is None


@covers(facts.ImageUserAccess)
class TestImageUserAccess:
    def test_command_is_valid_shell(self):
        command = facts.ImageUserAccess().command("ubuntu")
        assert subprocess.run(["bash", "-n", "-c", command]).returncode == 0
        assert "getent passwd ubuntu" in command and "chage -l ubuntu" in command

    def test_a_user_that_does_not_exist_prints_nothing(self):
        command = facts.ImageUserAccess().command("galion-no-such-user")
        out = subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout
        assert facts.ImageUserAccess().process(out.splitlines()) is None

    def test_an_existing_user_is_read(self):
        out = subprocess.run(
            ["sh", "-c", facts.ImageUserAccess().command("root")], capture_output=True, text=True
        ).stdout
        assert facts.ImageUserAccess().process(out.splitlines()) is not None

    def test_an_open_cloud_image_user(self):
        out = ["1|never|/etc/sudoers.d/90-cloud-init-users "]
        assert facts.ImageUserAccess().process(out) == {
            "keys": True,
            "sudo_files": ["/etc/sudoers.d/90-cloud-init-users"],
            "expired": False,
        }

    def test_a_closed_one_and_a_missing_one(self):
        closed = facts.ImageUserAccess().process(["0|Jan 02, 1970|"])
        assert closed == {"keys": False, "sudo_files": [], "expired": True}
        assert facts.ImageUserAccess().process([]) is None


@covers(facts.ToolModes)
class TestToolModes:
    def test_command_resolves_each_name_to_its_real_file(self, tmp_path):
        import subprocess

        real = tmp_path / "x86_64-linux-gnu-as"
        real.write_text("#!/bin/sh\n")
        real.chmod(0o755)
        (tmp_path / "as").symlink_to(real)
        command = facts.ToolModes().command(["as", "no-such-compiler"])
        out = subprocess.run(
            ["sh", "-c", command],
            env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        assert facts.ToolModes().process(out) == {str(real): "755"}

    def test_process(self):
        assert facts.ToolModes().process(["750 /usr/bin/x86_64-linux-gnu-as", ""]) == {
            "/usr/bin/x86_64-linux-gnu-as": "750"
        }
        assert facts.ToolModes().process([]) == {}


@covers(facts.DockerImages)
class TestDockerImages:
    def test_needs_docker_and_defaults_to_no_image(self):
        assert facts.DockerImages().requires_command() == "docker"
        assert facts.DockerImages().default() == set()

    def test_process(self):
        digest = "sha256:" + "ab" * 32
        out = [
            "galion-test-app:v1 galion-test-app@<none>",
            f"ghcr.io/galion-app/galion-api:1.0.0 ghcr.io/galion-app/galion-api@{digest}",
            f"ghcr.io/galion-app/galion-voice:<none> ghcr.io/galion-app/galion-voice@{digest}",
            "",
        ]
        assert facts.DockerImages().process(out) == {
            "galion-test-app:v1",
            "ghcr.io/galion-app/galion-api:1.0.0",
            f"ghcr.io/galion-app/galion-api@{digest}",
            f"ghcr.io/galion-app/galion-voice@{digest}",
        }


@covers(facts.AppRolloutStatus)
class TestAppRolloutStatus:
    def _ask(self, rig, settings, docker=True):
        """Run the command for real as pyinfra would (sh), with the rig's stand-in docker."""
        if not docker:
            (rig.root / "bin" / "docker").unlink()
        command = facts.AppRolloutStatus().command(
            str(rollout_rig.ROLLOUT), settings, str(rig.root / "state")
        )
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=rig.env())

    def test_command_asks_galion_rollout_about_the_settings_it_will_write(self, tmp_path):
        """galion-api finished its rollout in slot b; studio-api has only a stopped
        container. No settings file on the host: the fact reads those it is given."""
        rig = rollout_rig.Rig(tmp_path)
        (rig.root / "conf" / "galion-api.conf").unlink()
        rig.image("app:v2")
        rig.container("b", "running", "newhash", 18001, "app:v2")
        rig.container("a", "exited", "x", 8002, "app:v1", service="studio-api")
        rig.nginx_points_at(18001)
        rig.finished("newhash", "b")
        studio = rollout_rig.settings(
            rig, UPSTREAM="studio_api", SERVERS_FILE=tmp_path / "studio_api.servers"
        )
        out = self._ask(rig, {"galion-api": rollout_rig.settings(rig), "studio-api": studio})
        assert out.returncode == 0, out.stderr
        assert facts.AppRolloutStatus().process(out.stdout.splitlines()) == {
            "galion-api": {
                "up_to_date": True,
                "live": "galion-api-b",
                "hash": "newhash",
                "finished": "newhash",
                "others": [],
            },
            "studio-api": {
                "up_to_date": False,
                "live": None,
                "hash": None,
                "finished": None,
                "others": ["studio-api-a"],
            },
        }
        # Read-only: it asked docker for the list, nothing else.
        assert {c.split()[1] for c in rig.calls()} == {"ps"}

    def test_before_docker_is_installed_nothing_is_up_to_date(self, tmp_path):
        rig = rollout_rig.Rig(tmp_path)
        rig.nginx_points_at(18001)
        rig.finished("newhash", "b")
        out = self._ask(rig, {"galion-api": rollout_rig.settings(rig)}, docker=False)
        assert out.returncode == 0, out.stderr
        status = facts.AppRolloutStatus().process(out.stdout.splitlines())
        assert status["galion-api"]["up_to_date"] is False

    def test_a_docker_that_does_not_answer_fails_the_fact(self, tmp_path):
        rig = rollout_rig.Rig(tmp_path)
        (rig.stub / "docker-down").write_text("")
        assert self._ask(rig, {"galion-api": rollout_rig.settings(rig)}).returncode != 0

    def test_process(self):
        out = [
            "galion-api up-to-date live=galion-api-b hash=0123456789abcdef "
            "finished=0123456789abcdef others=-",
            "studio-api outdated live=studio-api-a hash=89abcdef01234567 "
            "finished=0123456789abcdef others=studio-api-b",
        ]
        status = facts.AppRolloutStatus().process(out)
        assert status["galion-api"]["up_to_date"] is True
        assert status["galion-api"]["others"] == []
        assert status["studio-api"] == {
            "up_to_date": False,
            "live": "studio-api-a",
            "hash": "89abcdef01234567",
            "finished": "0123456789abcdef",
            "others": ["studio-api-b"],
        }

    def test_default_is_no_service(self):
        assert facts.AppRolloutStatus().default() == {}


@covers(facts.PostgresReplicaState)
class TestPostgresReplicaState:
    def test_command_is_valid_shell_and_reads_the_primary_with_the_passfile(self, tmp_path):
        command = facts.PostgresReplicaState().command(
            15, "host=10.0.0.4 port=5432 user=replicator passfile=/p application_name=galion_db2"
        )
        script = tmp_path / "fact.sh"
        script.write_text(command)
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
        assert "replication=true" in command and "IDENTIFY_SYSTEM" in command
        assert facts.PostgresReplicaState().default() == {"cluster": "missing"}

    def test_process(self):
        output = [
            "cluster=online",
            "standby=1",
            "user_databases=2",
            "local_sysid=7312345678901234567",
            "local_tli=1",
            "receiver=streaming",
            "primary_sysid=7312345678901234567",
            "primary_tli=1",
        ]
        state = facts.PostgresReplicaState().process(output)
        assert state["receiver"] == "streaming" and state["standby"] == "1"
        assert state["primary_sysid"] == state["local_sysid"]


@covers(facts.PostgresPromotionState)
class TestPostgresPromotionState:
    def test_command_is_valid_shell_and_asks_the_primary_over_the_replicas_conninfo(self, tmp_path):
        command = facts.PostgresPromotionState().command(16)
        script = tmp_path / "fact.sh"
        script.write_text(command)
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
        assert "show primary_conninfo" in command and "IDENTIFY_SYSTEM" in command
        assert "pg_wal_lsn_diff" in command
        assert facts.PostgresPromotionState().default() == {"cluster": "missing"}

    def test_process(self):
        output = [
            "cluster=online",
            "in_recovery=t",
            "receive_lsn=0/3000148",
            "last_receipt=2026-12-06 00:01:02+00",
            "upstream_lsn=0/3000200",
            "unreceived_bytes=184",
        ]
        state = facts.PostgresPromotionState().process(output)
        assert state["in_recovery"] == "t" and state["unreceived_bytes"] == "184"
        assert state["last_receipt"] == "2026-12-06 00:01:02+00"


@covers(facts.PostgresSystemIdentifier)
def test_system_identifier_reads_pg_controldata(tmp_path):
    command = facts.PostgresSystemIdentifier().command(16)
    assert "/usr/lib/postgresql/16/bin/pg_controldata /var/lib/postgresql/16/main" in command
    script = tmp_path / "fact.sh"
    script.write_text(command)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert facts.PostgresSystemIdentifier().process(["7312345678901234567"]) == (
        "7312345678901234567"
    )
    assert facts.PostgresSystemIdentifier().default() == ""
