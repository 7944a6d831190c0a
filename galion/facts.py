"""Facts pyinfra does not ship: sysctl writability, UFW rules, OpenSSH algorithms."""

import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any, ClassVar

from pyinfra import host
from pyinfra.api import FactBase


def _normalise(value: str) -> str:
    return " ".join(str(value).split())


def _first_line(output: list[str]) -> str:
    """The first output line stripped, or "" when there is none."""
    return output[0].strip() if output else ""


class _Fact(FactBase):
    """A fact that declares its required command and default value as class attributes.

    pyinfra calls ``requires_command()`` (absent binary: the fact returns ``default()``)
    and ``default()`` (also used when the command prints nothing).
    """

    required_command: ClassVar[str | None] = None
    default_value: ClassVar[Any] = None

    def requires_command(self, *args, **kwargs):
        return self.required_command

    def default(self):
        # A copy: pyinfra caches fact results, a shared mutable default could leak changes.
        return copy.deepcopy(self.default_value)


class SysctlState(_Fact):
    """Current value of each sysctl key and whether this host may write it.

    In a container (LXC, OpenVZ, the sandbox's nspawn hosts) `kernel.*`, `vm.*` and
    `fs.*` are the machine's and read-only; only `net.*` belongs to the host.
    Returns ``{key: {"value": str | None, "writable": bool}}``.
    """

    def command(self, keys):
        names = " ".join(keys)
        return (
            f"for k in {names}; do p=/proc/sys/$(echo $k | tr . /); "
            'if [ -r "$p" ]; then w=0; [ -w "$p" ] && w=1; '
            'printf "%s\\t%s\\t%s\\n" "$k" "$w" "$(tr "\\t" " " < "$p")"; '
            'else printf "%s\\t-\\t\\n" "$k"; fi; done'
        )

    def process(self, output):
        state = {}
        for line in output:
            key, writable, *value = line.split("\t")
            state[key] = {
                "value": _normalise(value[0]) if writable != "-" else None,
                "writable": writable == "1",
            }
        return state


class UfwAddedRules(_Fact):
    """Rules added with `ufw`, as the command lines ufw itself prints (without "ufw ")."""

    required_command = "ufw"
    default_value: ClassVar[list] = []

    def command(self):
        return "ufw show added"

    def process(self, output):
        return [line[4:].strip() for line in output if line.startswith("ufw ")]


class UfwStatus(_Fact):
    """`{"active": bool, "incoming": "deny", "outgoing": "allow", "routed": ...}`."""

    required_command = "ufw"
    default_value: ClassVar[dict] = {"active": False}

    def command(self):
        return "ufw status verbose"

    def process(self, output):
        status = {"active": False}
        for line in output:
            if line.startswith("Status:"):
                status["active"] = line.split(":", 1)[1].strip() == "active"
            if line.startswith("Default:"):
                for part in line.split(":", 1)[1].split(","):
                    m = re.match(r"\s*(\w+) \((\w+)\)", part)
                    if m:
                        status[m.group(2)] = m.group(1)
        return status


class OpensshAlgorithms(_Fact):
    """What the installed OpenSSH supports, per `ssh -Q` query.

    `{"kex": [...], "cipher": [...], "mac": [...], "key": [...]}`.
    """

    required_command = "ssh"
    default_value: ClassVar[dict] = {}

    def command(self):
        return 'for q in kex cipher mac key; do echo "== $q"; ssh -Q $q; done'

    def process(self, output):
        found, current = {}, None
        for line in output:
            if line.startswith("== "):
                current = line[3:].strip()
                found[current] = []
            elif current and line.strip():
                found[current].append(line.strip())
        return found


class SystemdUnitEnabled(_Fact):
    """`systemctl is-enabled` of one unit: "enabled", "disabled", "masked", ... or "missing"."""

    def command(self, unit):
        return f"systemctl is-enabled {unit} 2>/dev/null || true"

    def process(self, output):
        return _first_line(output) or "missing"


class FilesMarked(_Fact):
    """The files directly in `path` whose names match the shell glob `names` and that hold
    `marker` (a managed file's header line): their paths."""

    default_value: ClassVar[list] = []

    def command(self, path, names, marker):
        return f"grep -lsF -- {shlex.quote(marker)} {shlex.quote(path)}/{names} || true"

    def process(self, output):
        return [line.strip() for line in output if line.strip()]


class PathExists(_Fact):
    """Whether a path exists (any type)."""

    def command(self, path):
        return f"test -e {path} && echo yes || echo no"

    def process(self, output):
        return _first_line(output) == "yes"


class ContainerVirtualization(_Fact):
    """`systemd-detect-virt --container`: "none" on a VM or bare metal, else the container kind."""

    def command(self):
        return "systemd-detect-virt --container 2>/dev/null || true"

    def process(self, output):
        return _first_line(output) or "none"


def in_container() -> bool:
    """Whether the current host is a container (its kernel.*, vm.*, fs.* are not its own)."""
    return host.get_fact(ContainerVirtualization) != "none"


def _psql(sql: str, database: str = "postgres") -> str:
    """A psql call as the postgres superuser, tab-separated, unaligned, no headers."""
    return (
        f"runuser -u postgres -- psql -X -q -AtF '\t' -d {database} -v ON_ERROR_STOP=1 -c \"{sql}\""
    )


class PostgresClusters(_Fact):
    """`pg_lsclusters`, one dict per cluster.

    `[{"version": "15", "name": "main", "port": 5432, "status": "online", ...}]`.
    """

    required_command = "pg_lsclusters"
    default_value: ClassVar[list] = []

    def command(self):
        return "pg_lsclusters --no-header"

    def process(self, output):
        clusters = []
        for line in output:
            parts = line.split()
            if len(parts) >= 6:
                clusters.append(
                    {
                        "version": parts[0],
                        "name": parts[1],
                        "port": int(parts[2]),
                        "status": parts[3],
                        "owner": parts[4],
                        "data": parts[5],
                    }
                )
        return clusters


class PostgresRoles(_Fact):
    """`{role: {"login": bool, "replication": bool, "superuser": bool, "verifier": str}}`.

    The verifier is what PostgreSQL stores (a salted SCRAM hash, never the password);
    it is read so the wanted password can be checked against it locally.
    """

    required_command = "psql"
    default_value: ClassVar[dict] = {}

    def command(self):
        return (
            _psql(
                "select rolname, rolcanlogin, rolreplication, rolsuper, "
                "coalesce(rolpassword, '') from pg_authid"
            )
            + " 2>/dev/null || true"
        )

    def process(self, output):
        roles = {}
        for line in output:
            parts = line.split("\t")
            if len(parts) == 5:
                roles[parts[0]] = {
                    "login": parts[1] == "t",
                    "replication": parts[2] == "t",
                    "superuser": parts[3] == "t",
                    "verifier": parts[4],
                }
        return roles


class PostgresDatabases(_Fact):
    """`{database: owner}`."""

    required_command = "psql"
    default_value: ClassVar[dict] = {}

    def command(self):
        return (
            _psql("select datname, pg_get_userbyid(datdba) from pg_database")
            + " 2>/dev/null || true"
        )

    def process(self, output):
        return dict(line.split("\t", 1) for line in output if "\t" in line)


class PostgresQuery(_Fact):
    """Rows of one read-only query as lists of strings (tab-separated)."""

    required_command = "psql"
    default_value: ClassVar[list] = []

    def command(self, sql, database="postgres"):
        return _psql(sql, database) + " 2>/dev/null || true"

    def process(self, output):
        return [line.split("\t") for line in output]


class MemoryTotalMb(_Fact):
    """MemTotal from /proc/meminfo, in MB (no procps needed)."""

    def command(self):
        return "awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo"

    def process(self, output):
        return int(output[0])


class PgbackrestStanza(_Fact):
    """Status of a pgBackRest stanza per repository: `{repo_key: (code, message)}`.

    Code 0 is ok; 1 missing stanza path; 2 no valid backups (stanza exists); 3 missing
    stanza data; others are errors. Empty when pgBackRest is missing or cannot tell.
    """

    required_command = "pgbackrest"
    default_value: ClassVar[dict] = {}

    def command(self, stanza):
        return (
            f"runuser -u postgres -- pgbackrest --stanza={stanza} --output=json info "
            "2>/dev/null || echo '[]'"
        )

    def process(self, output):
        try:
            stanzas = json.loads("\n".join(output))
        except ValueError:
            return {}
        result = {}
        for stanza in stanzas:
            for repo in stanza.get("repo", []):
                result[repo["key"]] = (repo["status"]["code"], repo["status"]["message"])
        return result


class AptCandidate(_Fact):
    """The version apt would install for a package, or None if no source has it."""

    def command(self, package):
        return f"apt-cache policy {package} 2>/dev/null | awk '/Candidate:/ {{print $2}}'"

    def process(self, output):
        value = _first_line(output)
        return None if value in ("", "(none)") else value


class CertbotLineage(_Fact):
    """The names in a certbot certificate lineage, or None if it does not exist."""

    def command(self, lineage):
        return (
            f"test -f /etc/letsencrypt/live/{lineage}/cert.pem && openssl x509 -noout -ext "
            f"subjectAltName -in /etc/letsencrypt/live/{lineage}/cert.pem || true"
        )

    def process(self, output):
        text = " ".join(output)
        if "DNS:" not in text:
            return None
        return sorted(
            part.split(":", 1)[1].strip().rstrip(",")
            for part in text.split()
            if part.startswith("DNS:")
        )


def parse_settings(lines, keys=None) -> dict[str, str]:
    """`key = value` lines of an ini-style file, for the keys asked or all (first one wins)."""
    found: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        key = key.strip()
        if (
            sep
            and (keys is None or key in keys)
            and key not in found
            and not key.startswith((";", "#"))
        ):
            found[key] = value.strip()
    return found


class ConfigSettings(_Fact):
    """Some `key = value` settings of an ini-style file: `{key: value}`; {} if it is missing."""

    default_value: ClassVar[Any] = {}

    def command(self, path, keys):
        pattern = "|".join(keys)
        return f"grep -E '^[[:space:]]*({pattern})[[:space:]]*=' {path} 2>/dev/null || true"

    def process(self, output):
        return parse_settings(output)


class SecondsSinceFailure(_Fact):
    """Seconds since the epoch time written in a marker file (a failure's time, by the
    host's clock), or None if there is no marker."""

    def command(self, path):
        return f'test -f {path} && echo "$(date +%s) $(head -c 32 {path})" || true'

    def process(self, output):
        # The arithmetic is done here: a damaged marker (a full disk) means "no marker".
        parts = _first_line(output).split()
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            return None
        return int(parts[0]) - int(parts[1])


class ImageUserAccess(_Fact):
    """How a (cloud image's) user can get in: `{"keys": bool, "sudo_files": [...],
    "expired": bool}`, or None if there is no such user."""

    def command(self, user):
        return (
            f"getent passwd {user} >/dev/null || exit 0; "
            f"h=$(getent passwd {user} | cut -d: -f6); k=0; "
            f'[ -s "$h/.ssh/authorized_keys" ] && k=1; '
            f"e=$(chage -l {user} | awk -F': ' '/^Account expires/ {{print $2}}'); "
            f"echo \"$k|$e|$(grep -lsE '^[[:space:]]*{user}[[:space:]]' /etc/sudoers.d/* "
            "| tr '\\n' ' ')\""
        )

    def process(self, output):
        line = _first_line(output)
        if not line:
            return None
        keys, expires, files = (line.split("|") + ["", ""])[:3]
        return {
            "keys": keys == "1",
            "sudo_files": files.split(),
            "expired": expires.strip() not in ("", "never"),
        }


class ToolModes(_Fact):
    """The real file behind each command name found in PATH and its mode, e.g.
    ``{"/usr/bin/x86_64-linux-gnu-as": "755"}`` (names not installed are left out)."""

    default_value: ClassVar[Any] = {}

    def command(self, names):
        listed = " ".join(shlex.quote(n) for n in names)
        return (
            f'for n in {listed}; do p=$(command -v "$n") || continue; '
            'stat -L -c "%a %n" "$(readlink -f "$p")"; done | sort -u'
        )

    def process(self, output):
        return parse_tool_modes(output)


def parse_tool_modes(output) -> dict[str, str]:
    modes = {}
    for line in output:
        mode, _, path = line.strip().partition(" ")
        if path:
            modes[path] = mode
    return modes


class DockerImages(_Fact):
    """The names of the images on the host: `repository:tag`, and `repository@digest`
    for images pulled by digest (empty without Docker)."""

    required_command = "docker"
    default_value: ClassVar[set] = set()

    def command(self):
        return (
            "docker images --digests "
            "--format '{{.Repository}}:{{.Tag}} {{.Repository}}@{{.Digest}}'"
        )

    def process(self, output):
        names = set()
        for line in output:
            names.update(n for n in line.split() if not n.endswith(("<none>", ":")))
        return names


class AppRolloutStatus(_Fact):
    """Whether each app service runs the settings the converge is about to write, as
    galion-rollout decides it (`galion-rollout status`: the script alone knows which
    container is live): {service: {"up_to_date": bool, "live": the live container or
    None, "hash": its config hash or None, "finished": the hash of the service's last
    finished rollout (its marker) or None, "others": the service's other containers}}.

    `script`: the repository's galion-rollout, sent with the command: the copy on the
    host may be older (this is read before the upload) or absent (the first converge).
    `settings`: {service: the content of its settings file}. Without Docker (before the
    converge that installs it) nothing is live: every service is outdated. A Docker
    that does not answer fails the fact."""

    default_value: ClassVar[dict] = {}

    def command(self, script, settings, state_dir):
        asks = "".join(
            f"main status {shlex.quote(name)} <(printf %s {shlex.quote(text)})\n"
            for name, text in sorted(settings.items())
        )
        program = Path(script).read_text() + asks
        return (
            f"GALION_APPS_STATE_DIR={shlex.quote(state_dir)} "
            f"bash -c {shlex.quote(program)} galion-rollout"
        )

    def process(self, output):
        found = {}
        for line in output:
            service, verdict, *fields = line.split()
            values = {k: None if v == "-" else v for k, v in (f.split("=", 1) for f in fields)}
            found[service] = {
                "up_to_date": verdict == "up-to-date",
                "live": values["live"],
                "hash": values["hash"],
                "finished": values["finished"],
                "others": values["others"].split(",") if values["others"] else [],
            }
        return found


# Shared by the facts that read a cluster's data directory and pg_controldata.
_PSQL = "runuser -u postgres -- psql -X -At"
_SYSID = "sed -n 's/^Database system identifier: *//p'"


def _data_dir(major) -> str:
    return f"/var/lib/postgresql/{major}/main"


def _controldata(major) -> str:
    return f"/usr/lib/postgresql/{major}/bin/pg_controldata {_data_dir(major)} 2>/dev/null"


def _cluster_lines(major) -> list[str]:
    """`cluster=missing` (and stop), else `cluster=online` or `cluster=down`."""
    online = f"pg_lsclusters --no-header | awk '$1 == {major} && $2 == \"main\" {{print $4}}'"
    return [
        f"if [ ! -f {_data_dir(major)}/PG_VERSION ]; then echo cluster=missing; exit 0; fi",
        f'echo "cluster=$({online} | grep -q "^online" && echo online || echo down)"',
    ]


class PostgresReplicaState(_Fact):
    """What a replica host's data directory is, for `replication.replica_action`:
    `{key: value}` over `replication.STATE_KEYS` (the primary's side read with the
    replication role's passfile; empty when unreachable)."""

    default_value: ClassVar[dict] = {"cluster": "missing"}

    def command(self, major, primary_conninfo):
        from galion import replication

        data = _data_dir(major)
        control = _controldata(major)
        psql = _PSQL
        user_dbs = (
            "select count(*) from pg_database "
            "where datname not in ('postgres', 'template0', 'template1')"
        )
        primary = shlex.quote(
            f"{primary_conninfo} dbname=replication replication=true connect_timeout=5"
        )
        sysid = _SYSID
        # A standby's timeline: its last restartpoint's, or the newer one it has replayed
        # up to (a rewound former primary is on the new timeline before its restartpoint).
        tli = (
            "awk -F': *' '/^Latest checkpoint.s TimeLineID|^Min recovery ending loc.s "
            "timeline/ {if ($2 + 0 > t + 0) t = $2} END {print t}'"
        )
        receiver = "select status from pg_stat_wal_receiver"
        return "; ".join(
            [
                *_cluster_lines(major),
                f"[ -f {data}/standby.signal ] && echo standby=1 || echo standby=0",
                f'echo "user_databases=$({psql} -c "{user_dbs}" 2>/dev/null)"',
                f'echo "local_sysid=$({control} | {sysid})"',
                f'echo "local_tli=$({control} | {tli})"',
                f'echo "receiver=$({psql} -c "{receiver}" 2>/dev/null)"',
                f"if [ -r {replication.PASSFILE} ]; then "
                f"id=$({psql} -d {primary} -c IDENTIFY_SYSTEM 2>/dev/null)",
                'echo "primary_sysid=$(echo "$id" | cut -d"|" -f1)"',
                'echo "primary_tli=$(echo "$id" | cut -s -d"|" -f2)"; fi',
                f"[ -f {replication.FENCE_MARKER} ] && echo fenced=1 || echo fenced=0",
            ]
        )

    def process(self, output):
        return _key_values(output)


def _key_values(output) -> dict:
    state = {}
    for line in output:
        key, _, value = line.partition("=")
        state[key] = value.strip()
    return state


class PostgresSystemIdentifier(_Fact):
    """The cluster's database system identifier (pg_controldata), "" without a cluster:
    a primary and its replicas share it; a cluster initialised elsewhere does not."""

    default_value: ClassVar[str] = ""

    def command(self, major):
        return f"{_controldata(major)} | {_SYSID}; true"

    def process(self, output):
        return _first_line(output)


class PostgresPromotionState(_Fact):
    """What the replica failover.py is to promote knows of its primary, for
    `replication.promote_action`: `{key: value}` over `replication.PROMOTION_KEYS`. The
    primary is asked (IDENTIFY_SYSTEM) over the replica's own primary_conninfo."""

    default_value: ClassVar[dict] = {"cluster": "missing"}

    def command(self, major):
        psql = _PSQL
        received = "coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())"
        return "; ".join(
            [
                *_cluster_lines(major),
                f'echo "in_recovery=$({psql} -c "select pg_is_in_recovery()" 2>/dev/null)"',
                f'echo "receive_lsn=$({psql} -c "select {received}" 2>/dev/null)"',
                f'echo "last_receipt=$({psql} -c '
                f'"select last_msg_receipt_time from pg_stat_wal_receiver" 2>/dev/null)"',
                f'up=$({psql} -c "show primary_conninfo" 2>/dev/null)',
                f'[ -n "$up" ] && up=$({psql} -d "$up dbname=replication replication=true '
                'connect_timeout=5" -c IDENTIFY_SYSTEM 2>/dev/null | cut -s -d"|" -f3)',
                'echo "upstream_lsn=$up"',
                f'[ -n "$up" ] && echo "unreceived_bytes=$({psql} -c "select greatest(0, '
                f"pg_wal_lsn_diff('$up', {received}))::bigint\" 2>/dev/null)\"",
                "true",
            ]
        )

    def process(self, output):
        return _key_values(output)
