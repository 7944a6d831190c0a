"""UFW converged to exactly the wanted rules, never enabled without the SSH port open."""

from pyinfra import host
from pyinfra.api import OperationError, operation

from ..facts.firewall import UfwAddedRules, UfwStatus


@operation()
def ufw_rules(
    rules: list[str],
    prepend: list[str] | None = None,
    defaults: dict[str, str] | None = None,
    must_allow_port: int | None = None,
):
    """
    Converge UFW to exactly these rules, then enable it.

    + rules: rules as ``ufw show added`` prints them, without "ufw ", in order
    + prepend: rules that go before all others (trusted sources before rate limits)
    + defaults: ``{"incoming": "deny", "outgoing": "allow", "routed": "deny"}``
    + must_allow_port: refuse to enable a firewall that does not let this port in
      (the SSH port: nothing locks the operator out)

    **Example:**

    .. code:: python

        ufw_rules(name="Firewall", rules=["allow 22/tcp"], must_allow_port=22)
    """
    prepend = prepend or []
    # Checked before any fact is read: a bad rule set fails without touching the host.
    ufw_check_port(prepend + rules, must_allow_port)
    present = host.get_fact(UfwAddedRules)
    status = host.get_fact(UfwStatus)
    yield from ufw_commands(rules, prepend, present, status, defaults)


def ufw_rule_opens(rule: str, port: int) -> bool:
    """Whether a rule (as `ufw show added` prints it) lets anyone in on this TCP port:
    `allow 22/tcp`, `limit 22/tcp`, `allow 22`; not `allow 2222/tcp`, and not a rule for
    some sources only (`allow from 10.0.22.0/24 ...`), which may not include the operator."""
    words = rule.split()
    return (
        len(words) >= 2
        and words[0] in ("allow", "limit")
        and words[1] in (f"{port}/tcp", str(port))
    )


def ufw_check_port(wanted: list[str], port: int | None) -> None:
    """Raise OperationError unless a rule in `wanted` opens `port` to everyone (if given):
    enabling UFW without it would lock the operator out."""
    if port is not None and not any(ufw_rule_opens(r, port) for r in wanted):
        raise OperationError(f"refusing to enable UFW without a rule for port {port}")


def ufw_commands(
    rules: list[str],
    prepend: list[str],
    present: list[str],
    status: dict,
    defaults: dict[str, str] | None,
) -> list[str]:
    """The ufw command lines that turn `present`/`status` into `prepend + rules`/`defaults`."""
    wanted = prepend + rules
    commands = [f"ufw prepend {rule}" for rule in prepend if rule not in present]
    commands += [f"ufw {rule}" for rule in rules if rule not in present]
    commands += [f"ufw delete {rule}" for rule in present if rule not in wanted]
    commands += [
        f"ufw default {policy} {direction}"
        for direction, policy in (defaults or {}).items()
        if status.get(direction) != policy
        # ufw says "disabled (routed)" on a host that forwards nothing (ip_forward=0):
        # as good as deny, and what it says again after `ufw default deny routed`.
        and not (direction == "routed" and policy == "deny" and status.get(direction) == "disabled")
    ]
    if not status.get("active"):
        commands.append("ufw --force enable")
    return commands
