"""What preflight asks of the postgres role beyond its knobs' checks: its secrets, and
the inventory's shape (one primary, replicas beside it)."""

from galion.validators import Problem, in_group, needs_group


def required_secrets(data) -> list[str]:
    needed = [db["password_secret"] for db in data.get("postgres_databases") or []]
    return needed + ["POSTGRES_MONITORING_PASSWORD", "POSTGRES_REPLICATION_PASSWORD"]


def check_inventory(hosts: dict[str, set[str]]) -> list[Problem]:
    """One primary; replicas only beside a primary, never on it."""
    problems = []
    primaries = in_group(hosts, "db")
    for name, groups in sorted(hosts.items()):
        if {"db", "db_replica"} <= groups:
            problems.append(
                Problem(
                    name,
                    "groups",
                    "is in both db and db_replica",
                    "a host is the primary or a replica, not both",
                )
            )
    if len(primaries) > 1:
        problems.append(
            Problem(
                ",".join(primaries),
                "group db",
                "has more than one primary",
                "keep one host in db and put the others in db_replica",
            )
        )
    problems += needs_group(
        hosts, "db_replica", "db", "has replicas but no primary", "put the primary in group db"
    )
    return problems
