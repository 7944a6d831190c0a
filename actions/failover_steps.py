"""The steps of a failover to a streaming replica, run by actions/failover.py
(docs/FLEET.md, "Failover").

The operator first edits the inventory: the replica to promote goes to group `db` (with
`backups`), the old primary to `db_replica`. Then, in one run:

1. on the new primary, before anything changes: what it has not received of the old
   primary's WAL (the commits a promotion would lose). Above
   `postgres_failover_max_lag_bytes`, or with the old primary out of reach, the run
   stops there unless `postgres_failover_force=true`;
2. the old primary is fenced (galion-fence: marked, PgBouncer and PostgreSQL stopped
   and masked; its fast shutdown streams the WAL it has left to the replica first);
3. the replica is promoted (galion-promote: never while the old primary still answers);
4. every other host is converged against the edited inventory: the apps' env files name
   the new primary (rolled out as any update), its slots, Redis and backups are set up,
   the other replicas follow it. Nothing of that runs if the promotion failed.

The old primary stays fenced until the next converge (deploy.py), which rejoins it as a
replica of the new primary with pg_rewind (operations/postgres/replication.py).
"""

from dataclasses import dataclass, field

from gevent.lock import BoundedSemaphore
from pyinfra import host, inventory, logger
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.facts.server import OsRelease
from pyinfra.operations import python, server

import operations
from galion import postgresql, replication, run_context, topology
from galion.facts.replication import PostgresPromotionState, PostgresSystemIdentifier
from galion.ops import barrier, shell_script
from galion.paths import SCRIPTS_DIR


class FailoverRequestError(ValueError):
    pass


@dataclass
class Plan:
    action: str  # replication.promote_action: "promote" or "done"
    report: str  # what the promotion loses, in words
    new_primary: str
    fence: set[str] = field(default_factory=set)  # former primaries to fence
    unreached: list[str] = field(default_factory=list)  # database hosts out of reach


_plan: list[Plan] = []
# pyinfra loads the deploy for every host at once (a greenlet each): without the lock,
# each host's greenlet decided a plan of its own, from facts read at different moments,
# and one that left the old primary out of `fence` skipped the fence there (the
# promotion then refused: the old primary still answered).
_planning = BoundedSemaphore()


def _major(h) -> int:
    return postgresql.version(h.data, h.get_fact(OsRelease))


def plan() -> Plan:
    """Decided once per run, from facts read before anything changed: the first host's
    greenlet decides, the others wait for it and follow the same plan."""
    with _planning:
        if not _plan:
            _plan.append(_decide())
    return _plan[0]


def _decide() -> Plan:
    new = topology.primary(inventory)
    active = {h.name for h in host.state.inventory.get_active_hosts()}
    if new.name not in active:
        raise FailoverRequestError(f"the new primary {new.name} is out of reach: nothing changed")
    state = new.get_fact(PostgresPromotionState, major=_major(new))
    action, report = replication.promote_action(
        state,
        int(new.data.get("postgres_failover_max_lag_bytes")),
        postgresql.is_true(new.data.get("postgres_failover_force")),
    )
    if action == "refuse":
        raise FailoverRequestError(f"{new.name} is not promoted: {report}")
    system = new.get_fact(PostgresSystemIdentifier, major=_major(new))
    if not system:
        raise FailoverRequestError(
            f"{new.name}'s database system identifier could not be read (pg_controldata), "
            "so its former primary cannot be told apart: nothing changed"
        )
    decided = Plan(action, report, new.name)
    for h in topology.database_replicas(inventory):
        if h.name not in active:
            decided.unreached.append(h.name)
            continue
        fenced = h.get_fact(File, path=replication.FENCE_MARKER)
        data = postgresql.data_dir(_major(h))
        standby = h.get_fact(File, path=f"{data}/standby.signal")
        same_system = system and h.get_fact(PostgresSystemIdentifier, major=_major(h)) == system
        if fenced or (same_system and not standby):
            decided.fence.add(h.name)
    if action == "done" and not decided.fence:
        raise FailoverRequestError(
            f"{new.name} is already the primary and no host of db_replica is a former "
            "primary: nothing to fail over (move the replica to promote to group db, and "
            "the primary to db_replica, in the inventory first)"
        )
    return decided


def _promoted(new_primary: str):
    """Runs on every host that is converged after the promotion: fails it (and so stops
    its repointing) when the promotion failed."""
    if any(h.name == new_primary for h in host.state.failed_hosts):
        raise RuntimeError(f"{new_primary} was not promoted: nothing is repointed to it")


@deploy("Failover")
def failover():
    decided = plan()
    # The apps read from the primary until a converge rejoins these.
    run_context.FENCED_OR_UNREACHED.update(decided.fence, decided.unreached)
    if host.name == decided.new_primary:
        host.log(f"failover to {host.name}: {decided.report}", logger.warning)
        fenced = ", ".join(sorted(decided.fence)) or "none"
        host.log(f"failover: former primaries fenced first: {fenced}", logger.warning)
        for name in decided.unreached:
            host.log(
                f"{name} is out of reach and NOT fenced: keep it off the network until a "
                "converge rejoins it, or it may take writes that are lost",
                logger.warning,
            )
    fencing = host.name in decided.fence
    if fencing:
        shell_script(postgresql.FILES / "galion-fence")
        server.shell(
            name=f"Fence the former primary (the new one is {decided.new_primary})",
            commands=[f"{SCRIPTS_DIR}/galion-fence {_major(host)} {decided.new_primary}"],
        )
    # The fence is done everywhere before the promotion starts.
    barrier("Failover: the former primary is fenced")
    if host.name == decided.new_primary:
        shell_script(postgresql.FILES / "galion-promote")
        if decided.action == "promote":
            server.shell(
                name=f"Promote {host.name} to the primary",
                commands=[f"{SCRIPTS_DIR}/galion-promote"],
            )
        else:
            host.noop(f"{host.name} is already the primary")
    if fencing:
        return  # fenced until the next converge rejoins it
    python.call(
        name=f"Failover: {decided.new_primary} is the primary",
        function=_promoted,
        new_primary=decided.new_primary,
    )
    run_context.PROMOTING.add(decided.new_primary)
    for role in operations.for_host(host.groups, operations.ROLES):
        role()
