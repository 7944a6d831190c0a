"""python -m sandbox up|down|status|leftovers [--topology single|fleet] [--distro bookworm|trixie]

`leftovers` lists what of the sandbox is still on the machine (hosts, processes,
namespaces, links, NAT rules, cgroups) and exits 1 if anything is.
"""

import argparse
import shutil
import sys
import time

import operations

from . import app_image, hosts, network, rootfs, services, settings
from . import secrets as sandbox_secrets
from . import state as sandbox_state
from .shell import SandboxError, run, say


def _operator_key() -> str:
    settings.STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not settings.OPERATOR_KEY.exists():
        run(
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "galion-sandbox-operator",
            "-f",
            str(settings.OPERATOR_KEY),
        )
    return settings.OPERATOR_KEY.with_suffix(".pub").read_text()


def up(topology: str, distro: str) -> dict:
    started = time.monotonic()
    down(quiet_if_nothing=True)
    specs = settings.TOPOLOGIES[topology]
    public_key = _operator_key()
    settings.KNOWN_HOSTS.unlink(missing_ok=True)
    sandbox_state.write_ssh_config()
    rootfs.ensure_base(distro)
    network.bridge_up()
    state = {
        "topology": topology,
        "distro": distro,
        "subnet": str(settings.SUBNET),
        "gateway": settings.gateway_address(),
        "operator_key": str(settings.OPERATOR_KEY),
        "ssh_config": str(settings.SSH_CONFIG),
        "known_hosts": str(settings.KNOWN_HOSTS),
        "secrets_env": str(settings.SECRETS_ENV),
        "hosts": [],
        "probe": None,
    }
    probe_addr = str(settings.SUBNET[settings.PROBE_INDEX])
    probe_ns = settings.netns_name(settings.PROBE_NAME)
    network.namespace_up(probe_ns, settings.veth_name(settings.PROBE_INDEX), probe_addr)
    # Extra source addresses, so tests that get an address banned or rate-limited do
    # not disturb each other.
    extra = [
        str(settings.SUBNET[settings.PROBE_INDEX + i]) for i in range(1, settings.PROBE_EXTRA + 1)
    ]
    for address in extra:
        run(
            "ip",
            "-n",
            probe_ns,
            "addr",
            "add",
            f"{address}/{settings.SUBNET.prefixlen}",
            "dev",
            "eth0",
        )
    state["probe"] = {"netns": probe_ns, "address": probe_addr, "extra_addresses": extra}
    edge_spec = next((s for s in specs if "edge" in s.groups), None)
    public_names = {}
    if edge_spec:
        for vhost in operations.knobs()["nginx_tls_vhosts"]:
            for name in [vhost["name"], *vhost.get("aliases", [])]:
                public_names[name] = settings.host_address(edge_spec.host_index)
    for spec in specs:
        address = settings.host_address(spec.host_index)
        netns = settings.netns_name(spec.name)
        network.namespace_up(netns, settings.veth_name(spec.host_index), address)
        root = rootfs.make_host_root(distro, spec.name, address, public_key, public_names)
        log = settings.HOSTS_DIR / spec.name / "console.log"
        pid = hosts.boot(spec.name, root, netns, log)
        state["hosts"].append(
            {
                "name": spec.name,
                "address": address,
                "groups": list(spec.groups),
                "netns": netns,
                "pid": pid,
                "root": str(root),
                "log": str(log),
            }
        )
        sandbox_state.save(state)
    for h in state["hosts"]:
        h["boot_state"] = hosts.wait_ready(
            h["address"],
            sandbox_state.ssh_options(),
            h["pid"],
            settings.HOSTS_DIR / h["name"] / "console.log",
        )
    ca = services.make_ca()
    s3 = services.start_s3(ca)
    state["ca_file"] = ca["ca"]
    edge = [h for h in state["hosts"] if "edge" in h["groups"]]
    if edge:
        state["acme"] = services.start_acme(ca, edge[0]["address"])
    state["s3"] = {k: v for k, v in s3.items() if k not in ("access_key", "secret_key")}
    # The apps' image: no registry here, so the apps role loads it from this archive.
    state["app_image_archive"] = str(app_image.build(settings.CACHE_DIR / "app-image"))
    sandbox_secrets.write(
        sandbox_secrets.generate(
            {
                "BACKUPS_S3_ACCESS_KEY": s3["access_key"],
                "BACKUPS_S3_SECRET_KEY": s3["secret_key"],
                # Alertmanager posts to the tests' receiver on the gateway.
                "ALERTMANAGER_WEBHOOK_URL": f"http://{settings.gateway_address()}:"
                f"{settings.ALERT_WEBHOOK_PORT}/alerts",
            }
        )
    )
    sandbox_state.save(state)
    say(f"up: {topology} on {distro}, {len(specs)} host(s) in {time.monotonic() - started:.1f}s")
    return state


def down(quiet_if_nothing: bool = False) -> None:
    names = hosts.leftover_cgroup_hosts()
    try:
        names.update(h["name"] for h in sandbox_state.load()["hosts"])
    except sandbox_state.SandboxNotUp:
        pass
    anything = bool(
        names
        or hosts.nspawn_pids()
        or services.service_pids()
        or network.leftover_namespaces()
        or network.leftover_links()
        or settings.HOSTS_DIR.exists()
    )
    if not anything:
        if not quiet_if_nothing:
            say("down: nothing to remove")
        network.teardown_all()
        left = leftovers()
        if left:
            raise SandboxError("down left these behind: " + "; ".join(left))
        return
    hosts.stop_all(names)
    for pid in services.service_pids():
        hosts.quiet_kill(pid, 15)
    time.sleep(0.3)
    for pid in services.service_pids():
        hosts.quiet_kill(pid, 9)
    network.teardown_all()
    for path in (settings.HOSTS_DIR, services.S3_DIR, services.CA_DIR):
        if path.exists():
            shutil.rmtree(path)
    for path in (settings.STATE_FILE, settings.SECRETS_ENV, settings.KNOWN_HOSTS):
        path.unlink(missing_ok=True)
    for socket in settings.STATE_DIR.glob("cm-*"):
        socket.unlink(missing_ok=True)
    left = leftovers()
    if left:
        raise SandboxError("down left these behind: " + "; ".join(left))
    say("down: hosts stopped, namespaces, links, NAT rules, cgroups and files removed")


def leftovers() -> list[str]:
    """Everything of the sandbox still on the machine (empty after a clean `down`)."""
    left = [f"netns {n}" for n in network.leftover_namespaces()]
    left += [f"link {n}" for n in network.leftover_links()]
    left += [f"cgroup {n}" for n in hosts.leftover_cgroup_hosts()]
    left += [f"nspawn pid {p}" for p in hosts.nspawn_pids()]
    left += [f"service pid {p}" for p in services.service_pids()]
    left += [f"iptables rule {r}" for r in network.leftover_rules()]
    if settings.HOSTS_DIR.exists():
        left.append(f"directory {settings.HOSTS_DIR}")
    return left


def status() -> int:
    try:
        state = sandbox_state.load()
    except sandbox_state.SandboxNotUp as exc:
        print(exc)
        return 1
    print(f"{state['topology']} on {state['distro']}, subnet {state['subnet']}")
    alive = hosts.nspawn_pids()
    for h in state["hosts"]:
        running = "running" if h["pid"] in alive else "STOPPED"
        print(f"  {h['name']:<10} {h['address']:<14} {running:<8} {','.join(h['groups'])}")
    print(f"  probe      {state['probe']['address']:<14} netns {state['probe']['netns']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status", "leftovers", "prepare"))
    parser.add_argument("--topology", choices=tuple(settings.TOPOLOGIES), default="single")
    parser.add_argument("--distro", choices=settings.DISTROS, default="bookworm")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up(args.topology, args.distro)
        elif args.command == "prepare":
            # The distro's base root file system only (debootstrap, cached): boots nothing.
            rootfs.ensure_base(args.distro)
        elif args.command == "down":
            down()
        elif args.command == "leftovers":
            left = leftovers()
            for item in left:
                print(f"sandbox: left behind: {item}", file=sys.stderr)
            return 1 if left else 0
        else:
            return status()
    except SandboxError as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
