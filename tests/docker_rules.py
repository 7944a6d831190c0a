"""Where Docker's forwarding rules stand on a host, for the docker role's tests (tests/roles)
and the engine-restart test (tests/sandbox)."""


def rules_before_docker_user(node) -> list[str]:
    """The FORWARD rules a packet for a container meets before the DOCKER-USER chain. Docker
    (re)inserts its DOCKER-USER jump first when it starts, and then its inter-network
    isolation chain above it (that one only drops); nothing that accepts may come first."""
    forward = node.host.check_output("iptables -S FORWARD").splitlines()
    assert "-A FORWARD -j DOCKER-USER" in forward, forward
    return forward[1 : forward.index("-A FORWARD -j DOCKER-USER")]


ALLOWED_FIRST = {"-A FORWARD -j DOCKER-ISOLATION-STAGE-1"}
