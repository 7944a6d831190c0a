"""testinfra fixtures: `node` runs a test once per inventory host; `probe` is another machine."""

import subprocess
import textwrap

import pytest

from tests.inventory import nodes

# What one TCP connection attempt meets, as the probe scripts below print it.
PORT_STATE = textwrap.dedent("""
    import socket
    def port_state(src, host, port, timeout):
        s = socket.socket()
        s.settimeout(timeout)
        try:
            if src:
                s.bind((src, 0))
            s.connect((host, port))
            return "open"
        except socket.timeout:
            return "filtered"
        except ConnectionRefusedError:
            return "refused"
        except OSError:
            return "error"
        finally:
            s.close()
""")

# One port, `count` attempts in turn.
CONNECT = PORT_STATE + textwrap.dedent("""
    import sys, time
    src, host, port, timeout, count = (sys.argv[1], sys.argv[2], int(sys.argv[3]),
                                       float(sys.argv[4]), int(sys.argv[5]))
    for _ in range(count):
        print(port_state(src, host, port, timeout))
        time.sleep(0.05)
""")

# Several ports, one attempt each, all at once.
CONNECT_PORTS = PORT_STATE + textwrap.dedent("""
    import sys
    from concurrent.futures import ThreadPoolExecutor
    host, timeout, ports = sys.argv[1], float(sys.argv[2]), [int(p) for p in sys.argv[3:]]
    with ThreadPoolExecutor(len(ports)) as pool:
        for port, result in zip(ports, pool.map(lambda p: port_state("", host, p, timeout), ports)):
            print(port, result)
""")


def pytest_generate_tests(metafunc):
    if "node" in metafunc.fixturenames:
        group = getattr(metafunc.module, "GROUP", None)
        chosen = [n for n in nodes() if group is None or group in n.groups]
        metafunc.parametrize("node", chosen, ids=[n.name for n in chosen])


class Probe:
    """A network namespace on the sandbox bridge: traffic from "another machine"."""

    def __init__(self, netns: str, address: str, extra: list[str]):
        self.netns, self.address, self.extra = netns, address, extra

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, *args],
            text=True,
            capture_output=True,
            timeout=timeout,
        )

    def tcp_ports(self, host: str, ports: list[int], timeout: float = 2.0) -> dict[int, str]:
        """tcp() on several ports at once (in parallel: a filtered port costs `timeout`)."""
        out = self.run(
            "python3",
            "-c",
            CONNECT_PORTS,
            host,
            str(timeout),
            *map(str, ports),
            timeout=timeout + 20,
        )
        return {int(port): state for port, state in map(str.split, out.stdout.splitlines())}

    def tcp(
        self, host: str, port: int, source: str = "", timeout: float = 2.0, count: int = 1
    ) -> list[str] | str:
        """Per attempt: "open", "refused" (let through, nothing listens), "filtered"
        (dropped) or "error" (rejected with ICMP). One attempt gives a string."""
        out = self.run(
            "python3",
            "-c",
            CONNECT,
            source,
            host,
            str(port),
            str(timeout),
            str(count),
            timeout=count * (timeout + 1) + 10,
        )
        results = out.stdout.split()
        return results[0] if count == 1 else results


@pytest.fixture(scope="session")
def probe():
    from sandbox import state

    try:
        p = state.load()["probe"]
    except state.SandboxNotUp:
        pytest.skip("probe tests need the sandbox")
    return Probe(p["netns"], p["address"], p["extra_addresses"])
