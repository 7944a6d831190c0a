"""Facts pyinfra does not ship: sysctl writability, UFW rules, OpenSSH algorithms."""

import re

from pyinfra.api import FactBase


def _normalise(value: str) -> str:
    return " ".join(str(value).split())


class SysctlState(FactBase):
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


class UfwAddedRules(FactBase):
    """Rules added with `ufw`, as the command lines ufw itself prints (without "ufw ")."""

    def requires_command(self, *args, **kwargs):
        return "ufw"

    def command(self):
        return "ufw show added"

    def default(self):
        return []

    def process(self, output):
        return [line[4:].strip() for line in output if line.startswith("ufw ")]


class UfwStatus(FactBase):
    """`{"active": bool, "incoming": "deny", "outgoing": "allow", "routed": ...}`."""

    def requires_command(self, *args, **kwargs):
        return "ufw"

    def command(self):
        return "ufw status verbose"

    def default(self):
        return {"active": False}

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


class OpensshAlgorithms(FactBase):
    """What the installed OpenSSH supports: `{"kex": [...], "cipher": [...], "mac": [...], "key": [...]}`."""

    def requires_command(self, *args, **kwargs):
        return "ssh"

    def command(self):
        return "for q in kex cipher mac key; do echo \"== $q\"; ssh -Q $q; done"

    def default(self):
        return {}

    def process(self, output):
        found, current = {}, None
        for line in output:
            if line.startswith("== "):
                current = line[3:].strip()
                found[current] = []
            elif current and line.strip():
                found[current].append(line.strip())
        return found


class SystemdUnitEnabled(FactBase):
    """`systemctl is-enabled` of one unit: "enabled", "disabled", "masked", ... or "missing"."""

    def command(self, unit):
        return f"systemctl is-enabled {unit} 2>/dev/null || true"

    def process(self, output):
        return output[0].strip() if output and output[0].strip() else "missing"


class PathExists(FactBase):
    """Whether a path exists (any type)."""

    def command(self, path):
        return f"test -e {path} && echo yes || echo no"

    def process(self, output):
        return bool(output) and output[0].strip() == "yes"


class ContainerVirtualization(FactBase):
    """`systemd-detect-virt --container`: "none" on a VM or bare metal, else the container kind."""

    def command(self):
        return "systemd-detect-virt --container 2>/dev/null || true"

    def process(self, output):
        return output[0].strip() if output and output[0].strip() else "none"


def _psql(sql: str, database: str = "postgres") -> str:
    """A psql call as the postgres superuser, tab-separated, unaligned, no headers."""
    return (f"runuser -u postgres -- psql -X -q -AtF '\t' -d {database} -v ON_ERROR_STOP=1 "
            f"-c \"{sql}\"")


class PostgresClusters(FactBase):
    """`pg_lsclusters`: `[{"version": "15", "name": "main", "port": 5432, "status": "online", ...}]`."""

    def requires_command(self, *args, **kwargs):
        return "pg_lsclusters"

    def command(self):
        return "pg_lsclusters --no-header"

    def default(self):
        return []

    def process(self, output):
        clusters = []
        for line in output:
            parts = line.split()
            if len(parts) >= 6:
                clusters.append({"version": parts[0], "name": parts[1], "port": int(parts[2]),
                                 "status": parts[3], "owner": parts[4], "data": parts[5]})
        return clusters


class PostgresRoles(FactBase):
    """`{role: {"login": bool, "replication": bool, "superuser": bool, "verifier": str}}`.

    The verifier is what PostgreSQL stores (a salted SCRAM hash, never the password);
    it is read so the wanted password can be checked against it locally.
    """

    def requires_command(self, *args, **kwargs):
        return "psql"

    def command(self):
        return _psql("select rolname, rolcanlogin, rolreplication, rolsuper, "
                     "coalesce(rolpassword, '') from pg_authid") + " 2>/dev/null || true"

    def default(self):
        return {}

    def process(self, output):
        roles = {}
        for line in output:
            parts = line.split("\t")
            if len(parts) == 5:
                roles[parts[0]] = {"login": parts[1] == "t", "replication": parts[2] == "t",
                                   "superuser": parts[3] == "t", "verifier": parts[4]}
        return roles


class PostgresDatabases(FactBase):
    """`{database: owner}`."""

    def requires_command(self, *args, **kwargs):
        return "psql"

    def command(self):
        return _psql("select datname, pg_get_userbyid(datdba) from pg_database") + " 2>/dev/null || true"

    def default(self):
        return {}

    def process(self, output):
        return dict(line.split("\t", 1) for line in output if "\t" in line)


class PostgresQuery(FactBase):
    """Rows of one read-only query as lists of strings (tab-separated)."""

    def requires_command(self, *args, **kwargs):
        return "psql"

    def command(self, sql, database="postgres"):
        return _psql(sql, database) + " 2>/dev/null || true"

    def default(self):
        return []

    def process(self, output):
        return [line.split("\t") for line in output]


class MemoryTotalMb(FactBase):
    """MemTotal from /proc/meminfo, in MB (no procps needed)."""

    def command(self):
        return "awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo"

    def process(self, output):
        return int(output[0])


class PgbackrestStanza(FactBase):
    """Status of a pgBackRest stanza per repository: `{repo_key: (code, message)}`.

    Code 0 is ok; 1 missing stanza path; 2 no valid backups (stanza exists); 3 missing
    stanza data; others are errors. Empty when pgBackRest is missing or cannot tell.
    """

    def requires_command(self, *args, **kwargs):
        return "pgbackrest"

    def command(self, stanza):
        return (f"runuser -u postgres -- pgbackrest --stanza={stanza} --output=json info "
                "2>/dev/null || echo '[]'")

    def default(self):
        return {}

    def process(self, output):
        import json
        try:
            stanzas = json.loads("\n".join(output))
        except ValueError:
            return {}
        result = {}
        for stanza in stanzas:
            for repo in stanza.get("repo", []):
                result[repo["key"]] = (repo["status"]["code"], repo["status"]["message"])
        return result


class AptCandidate(FactBase):
    """The version apt would install for a package, or None if no source has it."""

    def command(self, package):
        return f"apt-cache policy {package} 2>/dev/null | awk '/Candidate:/ {{print $2}}'"

    def process(self, output):
        value = output[0].strip() if output else ""
        return None if value in ("", "(none)") else value


class CertbotLineage(FactBase):
    """The names in a certbot certificate lineage, or None if it does not exist."""

    def command(self, lineage):
        return (f"test -f /etc/letsencrypt/live/{lineage}/cert.pem && openssl x509 -noout -ext "
                f"subjectAltName -in /etc/letsencrypt/live/{lineage}/cert.pem || true")

    def process(self, output):
        text = " ".join(output)
        if "DNS:" not in text:
            return None
        return sorted(part.split(":", 1)[1].strip().rstrip(",") for part in text.split()
                      if part.startswith("DNS:"))
