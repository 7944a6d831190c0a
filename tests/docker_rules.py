"""Where Docker's forwarding rules stand on a host, for the docker role's tests (tests/roles)
and the engine-restart test (tests/sandbox)."""

# Docker (re)inserts its DOCKER-USER jump first when it starts, and then its inter-network
# isolation chain above it: that one only drops, so it may come first.
ONLY_DROPS = {"-A FORWARD -j DOCKER-ISOLATION-STAGE-1"}


def accepts_before_docker_user(node) -> list[str]:
    """FORWARD rules a packet for a container meets before the DOCKER-USER chain that could
    let it through (none may)."""
    forward = node.host.check_output("iptables -S FORWARD").splitlines()
    assert "-A FORWARD -j DOCKER-USER" in forward, forward
    return [
        r for r in forward[1 : forward.index("-A FORWARD -j DOCKER-USER")] if r not in ONLY_DROPS
    ]
