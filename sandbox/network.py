"""The sandbox bridge, one network namespace + veth per host, NAT to the mirror."""

from . import settings
from .shell import quiet, run

NAT_COMMENT = f"{settings.PREFIX}-nat"


def _nat_rules() -> list[list[str]]:
    subnet = str(settings.SUBNET)
    return [
        ["-t", "nat", "POSTROUTING", "-s", subnet, "!", "-o", settings.BRIDGE, "-j", "MASQUERADE"],
        ["-t", "filter", "FORWARD", "-i", settings.BRIDGE, "-j", "ACCEPT"],
        ["-t", "filter", "FORWARD", "-o", settings.BRIDGE, "-j", "ACCEPT"],
    ]


def _rule_args(rule: list[str], action: str) -> list[str]:
    table, chain, spec = rule[1], rule[2], rule[3:]
    return [
        "iptables",
        "-w",
        "-t",
        table,
        action,
        chain,
        *spec,
        "-m",
        "comment",
        "--comment",
        NAT_COMMENT,
    ]


def bridge_up() -> None:
    if not quiet("ip", "link", "show", settings.BRIDGE):
        run("ip", "link", "add", settings.BRIDGE, "type", "bridge")
    address = f"{settings.gateway_address()}/{settings.SUBNET.prefixlen}"
    addrs = run("ip", "-o", "addr", "show", "dev", settings.BRIDGE).stdout
    if address not in addrs:
        run("ip", "addr", "add", address, "dev", settings.BRIDGE)
    run("ip", "link", "set", settings.BRIDGE, "up")
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
        f.write("1\n")
    for rule in _nat_rules():
        if not quiet(*_rule_args(rule, "-C")):
            run(*_rule_args(rule, "-I" if rule[1] == "filter" else "-A"))


def namespace_up(netns: str, veth: str, address: str) -> None:
    namespace_down(netns, veth)
    run("ip", "netns", "add", netns)
    run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
    run("ip", "link", "set", veth, "master", settings.BRIDGE, "up")
    run("ip", "-n", netns, "addr", "add", f"{address}/{settings.SUBNET.prefixlen}", "dev", "eth0")
    run("ip", "-n", netns, "link", "set", "eth0", "up")
    run("ip", "-n", netns, "link", "set", "lo", "up")
    run("ip", "-n", netns, "route", "add", "default", "via", settings.gateway_address())


def set_link(address: str, up: bool) -> None:
    """Take a sandbox host off the bridge (its link down: a dead network card, a
    partition; the host keeps running) or put it back."""
    run(
        "ip",
        "link",
        "set",
        settings.veth_name(settings.host_index(address)),
        "up" if up else "down",
    )


def namespace_down(netns: str, veth: str) -> None:
    quiet("ip", "link", "del", veth)
    quiet("ip", "netns", "del", netns)


def leftover_namespaces() -> list[str]:
    out = run("ip", "netns", "list", check=False).stdout or ""
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(settings.PREFIX + "-")]


def leftover_links() -> list[str]:
    out = run("ip", "-o", "link", "show", check=False).stdout or ""
    links = []
    for line in out.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(settings.PREFIX + "-"):
            links.append(name)
    return links


def leftover_rules() -> list[str]:
    rules = []
    for table in ("nat", "filter"):
        out = run("iptables", "-w", "-t", table, "-S", check=False).stdout or ""
        rules += [f"{table}: {line}" for line in out.splitlines() if NAT_COMMENT in line]
    return rules


def teardown_all() -> None:
    """Remove every namespace, link and NAT rule the sandbox made; safe to repeat."""
    for netns in leftover_namespaces():
        quiet("ip", "netns", "del", netns)
    for link in leftover_links():
        if link != settings.BRIDGE:
            quiet("ip", "link", "del", link)
    quiet("ip", "link", "del", settings.BRIDGE)
    for table in ("nat", "filter"):
        out = run("iptables", "-w", "-t", table, "-S", check=False).stdout or ""
        for line in out.splitlines():
            if NAT_COMMENT in line and line.startswith("-A "):
                quiet("iptables", "-w", "-t", table, "-D", *line.split()[1:])
