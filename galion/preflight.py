"""Check the inventory's data before any host is touched; stop with one line per problem.

Each problem names the host, the key and the fix. deploy.py calls `run()` before it
adds a single operation, so bad data never reaches a server.
"""

import base64
import binascii
import ipaddress
import re
import sys
from pathlib import Path
from typing import Callable, NamedTuple

from . import secrets

REPO = Path(__file__).resolve().parent.parent
ROLE_GROUPS = ("app", "db", "db_replica", "edge", "monitoring", "backups")
EXIT_CODE = 2

HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                      r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
UNIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
DURATION = re.compile(r"^\d+[smhdw]?$")
SIZE = re.compile(r"^\d+[KMGT]?$")
PORT_PROTO = re.compile(r"^(\d{1,5})(:\d{1,5})?/(tcp|udp)$")
KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
             "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
             "sk-ecdsa-sha2-nistp256@openssh.com")


class Problem(NamedTuple):
    host: str
    key: str
    message: str
    fix: str

    def line(self) -> str:
        return f"preflight: {self.host}: {self.key}: {self.message} (fix: {self.fix})"


def _is_address_or_name(value) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(HOSTNAME.match(value)) and not re.match(r"^[\d.]+$", value)


def _is_network(value) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
        return True
    except (TypeError, ValueError):
        return False


def _is_port(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def _public_key_problem(entry) -> str | None:
    if not isinstance(entry, str) or not entry.strip():
        return "an empty entry"
    lines = [entry.strip()]
    if not entry.strip().startswith(("ssh-", "ecdsa-", "sk-")):
        path = Path(entry).expanduser()
        if not path.is_file():
            return f"{entry} is neither a public key nor a readable .pub file"
        lines = [ln.strip() for ln in path.read_text().splitlines()
                 if ln.strip() and not ln.startswith("#")]
        if not lines:
            return f"{entry} holds no key"
    for line in lines:
        parts = line.split()
        if len(parts) < 2 or parts[0] not in KEY_TYPES:
            return f"{line[:30]!r}... is not an SSH public key"
        if "PRIVATE KEY" in line:
            return "that is a private key"
        try:
            blob = base64.b64decode(parts[1], validate=True)
        except (binascii.Error, ValueError):
            return f"{parts[0]} key with invalid base64"
        if parts[0].encode() not in blob[:64]:
            return f"{parts[0]} key whose body is of another type"
    return None


# (key, check, what is wrong, how to fix). A check gets the value, returns True if fine.
Check = tuple[str, Callable[[object], bool], str, str]


def _run_checks(name: str, data, checks: list[Check]) -> list[Problem]:
    problems = []
    for key, ok, message, fix in checks:
        value = data.get(key)
        try:
            fine = ok(value)
        except (TypeError, ValueError):
            fine = False
        if not fine:
            problems.append(Problem(name, key, f"{value!r} {message}", fix))
    return problems
HOST_CHECKS: list[Check] = [
    ("ssh_hostname", _is_address_or_name, "is not an IP address or host name",
     "set it to the server's address in the inventory"),
    ("operator_email", lambda v: isinstance(v, str) and bool(EMAIL.match(v)),
     "is not an e-mail address", "set a mailbox the on-call reads, e.g. ops@galion.app"),
    ("base_deploy_user", lambda v: isinstance(v, str) and bool(UNIX_USER.match(v)) and v != "root",
     "is not a valid non-root Unix user name", "use lowercase letters, digits, - or _, e.g. deploy"),
    ("base_ssh_port", _is_port, "is not a TCP port (1-65535)", "use 22 unless you moved SSH"),
    ("base_ssh_max_auth_tries", lambda v: isinstance(v, int) and 1 <= v <= 10,
     "is not between 1 and 10", "use 3"),
    ("base_ssh_trusted_cidrs",
     lambda v: isinstance(v, list) and all(_is_network(c) for c in v),
     "is not a list of CIDRs", "write addresses like 203.0.113.7/32, or leave the list empty"),
    ("base_fail2ban_ignoreip",
     lambda v: isinstance(v, list) and all(_is_network(c) for c in v),
     "is not a list of addresses or CIDRs", "write entries like 127.0.0.1/8"),
    ("base_firewall_ports_by_group",
     lambda v: isinstance(v, dict) and all(
         g in ROLE_GROUPS and isinstance(ps, list) and all(
             isinstance(p, str) and PORT_PROTO.match(p)
             and all(1 <= int(x) <= 65535 for x in re.findall(r"\d+", p)) for p in ps)
         for g, ps in v.items()),
     "is not {role group: ['PORT/tcp', ...]}", "e.g. {'edge': ['80/tcp', '443/tcp']}"),
    ("base_fail2ban_bantime", lambda v: isinstance(v, str) and bool(DURATION.match(v)),
     "is not a duration", "use a number with s, m, h, d or w, e.g. 1h"),
    ("base_fail2ban_bantime_max", lambda v: isinstance(v, str) and bool(DURATION.match(v)),
     "is not a duration", "use a number with s, m, h, d or w, e.g. 7d"),
    ("base_fail2ban_findtime", lambda v: isinstance(v, str) and bool(DURATION.match(v)),
     "is not a duration", "use a number with s, m, h, d or w, e.g. 10m"),
    ("base_fail2ban_maxretry", lambda v: isinstance(v, int) and 1 <= v <= 100,
     "is not between 1 and 100", "use 5"),
    ("base_journald_max_use", lambda v: isinstance(v, str) and bool(SIZE.match(v)),
     "is not a size", "use a number with K, M, G or T, e.g. 1G"),
    ("base_unattended_reboot_time",
     lambda v: isinstance(v, str) and bool(re.match(r"^([01]\d|2[0-3]):[0-5]\d$", v)),
     "is not HH:MM", "e.g. 04:00"),
    ("base_mail_relay",
     lambda v: v == "" or (isinstance(v, str) and ":" in v
                           and _is_address_or_name(v.rpartition(":")[0])
                           and v.rpartition(":")[2].isdigit()
                           and _is_port(int(v.rpartition(":")[2]))),
     "is not host:port", "e.g. smtp.eu.mailgun.org:587, or \"\" for no relay"),
]


IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
REDIS_POLICIES = ("noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
                  "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl")


def _databases_ok(value) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(db, dict) and IDENTIFIER.match(str(db.get("name", "")))
        and IDENTIFIER.match(str(db.get("owner", "")))
        and str(db.get("password_secret", "")) in secrets.example_keys()
        for db in value)


def _int_between(low: int, high: int) -> Callable[[object], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


DATA_TIER_CHECKS: list[Check] = [
    ("postgres_version", lambda v: v is None or v in (13, 14, 15, 16, 17, 18),
     "is not a PostgreSQL major version", "use None (the distro's) or e.g. 16"),
    ("postgres_memory_budget_mb", lambda v: v is None or _int_between(256, 4_000_000)(v),
     "is not a size in MB (>= 256)", "use None (from the host's RAM) or e.g. 8192"),
    ("postgres_max_connections", _int_between(20, 10000), "is not between 20 and 10000", "use 200"),
    ("postgres_port", _is_port, "is not a TCP port", "use 5432"),
    ("pgbouncer_port", _is_port, "is not a TCP port", "use 6432"),
    ("redis_port", _is_port, "is not a TCP port", "use 6379"),
    ("postgres_log_min_duration_ms", _int_between(-1, 3_600_000), "is not milliseconds (-1 = off)",
     "use 1000"),
    ("pgbouncer_max_client_conn", _int_between(10, 100000), "is not between 10 and 100000", "use 1000"),
    ("pgbouncer_default_pool_size", _int_between(1, 1000), "is not between 1 and 1000", "use 25"),
    ("postgres_databases", _databases_ok,
     "is not a list of {name, owner, password_secret} (lowercase names, secret listed in .env.example)",
     "see group_data/all.py"),
    ("redis_maxmemory_mb", _int_between(16, 4_000_000), "is not a size in MB", "use 2048"),
    ("redis_maxmemory_policy", lambda v: v in REDIS_POLICIES, "is not a Redis eviction policy",
     f"use one of {', '.join(REDIS_POLICIES)}"),
    ("private_address", lambda v: v is None or (isinstance(v, str) and _is_ip(v)),
     "is not an IP address", "give the host's address on the private network, or leave it unset"),
]


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _check_data_tier(name: str, data) -> list[Problem]:
    problems = []
    problems.extend(_run_checks(name, data, DATA_TIER_CHECKS))
    ports = [data.get(k) for k in ("postgres_port", "pgbouncer_port", "redis_port")]
    if len(set(map(str, ports))) != len(ports):
        problems.append(Problem(name, "postgres_port/pgbouncer_port/redis_port",
                                f"{ports} are not three different ports", "use 5432, 6432, 6379"))
    names = {db.get("name") for db in data.get("postgres_databases") or [] if isinstance(db, dict)}
    for stack in data.get("app_stacks") or []:
        if stack.get("database") not in names:
            problems.append(Problem(name, "app_stacks", f"{stack.get('name')!r} uses database "
                                    f"{stack.get('database')!r}, which postgres_databases lacks",
                                    "add the database or correct the name"))
    return problems


BACKUP_CHECKS: list[Check] = [
    ("backups_archive_timeout", _int_between(10, 3600), "is not seconds between 10 and 3600",
     "use 60: it bounds the data a dead disk takes with it"),
    ("backups_retention_days", _int_between(1, 3650), "is not a number of days", "use 30"),
    ("backups_s3_endpoint", _is_address_or_name, "is not a host name", "e.g. s3.eu-central-003.backblazeb2.com"),
    ("backups_s3_port", _is_port, "is not a TCP port", "use 443"),
    ("backups_s3_bucket", lambda v: isinstance(v, str) and bool(re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", v)),
     "is not an S3 bucket name", "lowercase letters, digits, dots and dashes"),
    ("backups_s3_path", lambda v: isinstance(v, str) and v.startswith("/") and " " not in v,
     "is not a path starting with /", "e.g. /titanaxe"),
    ("backups_s3_ca_file", lambda v: v is None or Path(str(v)).expanduser().is_file(),
     "is not a readable file", "give the CA file's local path, or None for the system's CAs"),
    ("backups_drill_port", _is_port, "is not a TCP port", "use 5499"),
]


def _check_backups(name: str, data, groups: set[str]) -> list[Problem]:
    problems = []
    if "db" not in groups:
        problems.append(Problem(name, "groups", "is in backups but not in db",
                                "pgBackRest runs beside PostgreSQL: put the primary in backups"))
    problems.extend(_run_checks(name, data, BACKUP_CHECKS))
    return problems


VHOST_KINDS = ("frontend", "api", "websocket")


def _vhosts_ok(data) -> Callable[[object], bool]:
    ports = data.get("nginx_upstream_ports") or {}
    return lambda v: isinstance(v, list) and bool(v) and all(
        isinstance(x, dict) and _is_address_or_name(x.get("name"))
        and all(_is_address_or_name(a) for a in x.get("aliases", []))
        and x.get("kind") in VHOST_KINDS and x.get("upstream") in ports
        and isinstance(x.get("csp"), str) and '"' not in x.get("csp") for x in v)


def _check_edge(name: str, data) -> list[Problem]:
    checks: list[Check] = [
        ("nginx_vhosts", _vhosts_ok(data),
         "is not a list of {name, aliases, upstream, kind, csp} with known upstreams",
         f"kind is one of {', '.join(VHOST_KINDS)}; upstream a key of nginx_upstream_ports"),
        ("nginx_upstream_ports", lambda v: isinstance(v, dict) and all(
            IDENTIFIER.match(k) and _is_port(p) for k, p in v.items()),
         "is not {upstream_name: port}", "e.g. {'galion_api': 8001}"),
        ("nginx_acme_directory", lambda v: isinstance(v, str) and v.startswith("https://"),
         "is not an https:// ACME directory URL", "Let's Encrypt: https://acme-v02.api.letsencrypt.org/directory"),
        ("nginx_acme_ca_bundle", lambda v: v is None or Path(str(v)).expanduser().is_file(),
         "is not a readable file", "None for the system's CAs"),
        ("nginx_client_max_body_size", lambda v: isinstance(v, str) and bool(re.match(r"^\d+[kmg]?$", v)),
         "is not an nginx size", "e.g. 50m"),
        ("nginx_rate_api_per_minute", _int_between(1, 10**9), "is not a positive number", "use 100"),
        ("nginx_rate_general_per_minute", _int_between(1, 10**9), "is not a positive number", "use 200"),
        ("nginx_rate_api_burst", _int_between(0, 10**9), "is not a number", "use 20"),
        ("nginx_rate_general_burst", _int_between(0, 10**9), "is not a number", "use 40"),
        ("nginx_connections_per_ip", _int_between(1, 65535), "is not between 1 and 65535 (nginx's bound)", "use 50"),
    ]
    problems = []
    problems.extend(_run_checks(name, data, checks))
    return problems


def _inventory_names() -> set[str]:
    """pyinfra also puts every host in a group named after its inventory file."""
    names = {p.stem for p in (REPO / "inventories").glob("*.py")}
    names.update(Path(arg).stem for arg in sys.argv if arg.endswith(".py"))
    return names


def check_host(name: str, data, groups: set[str], roles) -> list[Problem]:
    """`roles`: (group or None, role module) pairs, as operations.ROLES."""
    problems = []
    allowed = set(ROLE_GROUPS) | _inventory_names() | {"all"}
    for group in sorted(groups - allowed):
        problems.append(Problem(name, f"group {group}", "is not a role group",
                                f"use one of {', '.join(ROLE_GROUPS)}"))
    if not groups & set(ROLE_GROUPS):
        problems.append(Problem(name, "groups", "the host is in no role group",
                                f"add it to at least one of {', '.join(ROLE_GROUPS)}"))
    problems.extend(_run_checks(name, data, HOST_CHECKS))
    keys = data.get("base_deploy_authorized_keys")
    if not isinstance(keys, list) or not keys:
        problems.append(Problem(name, "base_deploy_authorized_keys", "is empty",
                                "list the operator's public key or its .pub file"))
    else:
        for entry in keys:
            reason = _public_key_problem(entry)
            if reason:
                problems.append(Problem(name, "base_deploy_authorized_keys", reason,
                                        "give `ssh-ed25519 AAAA...` or a path to a .pub file"))
    if groups & {"db", "db_replica", "app"}:
        problems.extend(_check_data_tier(name, data))
    if "backups" in groups:
        problems.extend(_check_backups(name, data, groups))
    if "edge" in groups:
        problems.extend(_check_edge(name, data))
    modules = [m for g, m in roles if g is None or g in groups]
    for module in modules:
        for key in module.required_secrets(data):
            reason = secrets.problem(key)
            if reason:
                problems.append(Problem(name, f"secret {key}", reason,
                                        f"set {key} in {secrets.env_file()} "
                                        "(see .env.example for how to generate it)"))
    return problems


def check_topology(hosts: dict[str, set[str]]) -> list[Problem]:
    """Group combinations across the inventory. `hosts` maps host name to its groups."""
    problems = []
    in_group = {g: sorted(h for h, gs in hosts.items() if g in gs) for g in ROLE_GROUPS}
    for name, groups in sorted(hosts.items()):
        if {"db", "db_replica"} <= groups:
            problems.append(Problem(name, "groups", "is in both db and db_replica",
                                    "a host is the primary or a replica, not both"))
    if len(in_group["db"]) > 1:
        problems.append(Problem(",".join(in_group["db"]), "group db", "has more than one primary",
                                "keep one host in db and put the others in db_replica"))
    if in_group["db_replica"] and not in_group["db"]:
        problems.append(Problem(",".join(in_group["db_replica"]), "group db_replica",
                                "has replicas but no primary", "put the primary in group db"))
    if in_group["edge"] and not in_group["app"]:
        problems.append(Problem(",".join(in_group["edge"]), "group edge",
                                "has nothing to proxy to", "put at least one host in group app"))
    if in_group["backups"] and not in_group["db"]:
        problems.append(Problem(",".join(in_group["backups"]), "group backups",
                                "has no database to back up", "put the primary in group db"))
    return problems


def check(inventory, roles) -> list[Problem]:
    problems = []
    hosts = {}
    for host in inventory:
        groups = set(host.groups)
        hosts[host.name] = groups
        problems.extend(check_host(host.name, host.data, groups, roles))
    problems.extend(check_topology(hosts))
    return problems


_checked: set[int] = set()


def run_once(inventory, roles) -> None:
    """`run()` once per inventory object (config.py before connecting, deploy.py after)."""
    if id(inventory) not in _checked:
        run(inventory, roles)
        _checked.add(id(inventory))


def run(inventory, roles) -> None:
    """Print every problem on one line each and exit 2, or return if the data is sound."""
    problems = check(inventory, roles)
    if problems:
        for problem in problems:
            print(problem.line(), file=sys.stderr, flush=True)
        sys.stderr.flush()
        raise SystemExit(EXIT_CODE)
