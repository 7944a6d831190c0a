"""sshd: the hardening drop-in (validated, then reloaded), and moving SSH to another
port without a moment in which no port takes logins (a fresh login on the new port is
proven before the old one closes)."""

from pyinfra import host
from pyinfra.api.exceptions import OperationError
from pyinfra.operations import python, server

from galion import connection
from galion.facts.files import PathExists
from galion.facts.ssh import OpensshAlgorithms
from galion.facts.system import SystemdUnitEnabled
from galion.ops import config_file, render

from .firewall import firewall
from .users import DEPLOY_PROVEN_MARKER

SSHD_DROPIN = "/etc/ssh/sshd_config.d/00-galion-hardening.conf"

# ssh.socket (Ubuntu 24.04) takes a new port only after a daemon-reload and a restart.
SSH_SOCKET_RELOAD = ["systemctl daemon-reload", "systemctl restart ssh.socket"]
SSHD_RELOAD = "systemctl try-reload-or-restart ssh.service"


def sshd_and_firewall():
    new = int(host.data.base_ssh_port)
    old = connection.moving_from(host.data)
    if old is None:
        sshd([new])
        firewall([new])
        return
    # Moving SSH (README "Moving SSH"): never a moment without a port that takes logins.
    # The new port is opened, sshd listens on both, a fresh login on the new one is
    # proven; only then sshd leaves the old port and its rule goes. A failed proof stops
    # the run here, with both ports open.
    firewall([old, new])
    sshd([old, new])
    python.call(name=f"Prove a login on the new SSH port {new}", function=_prove_login, port=new)
    sshd([new])
    firewall([new])


def sshd(ports: list[int]):
    supported = host.get_fact(OpensshAlgorithms)
    data = host.data

    def pick(preference, kind):
        available = supported.get(kind)
        return [a for a in preference if available is None or a in available] or preference

    proven = host.data.get("ssh_user") == data.base_deploy_user or host.get_fact(
        PathExists, path=DEPLOY_PROVEN_MARKER
    )
    content = render(
        "base/etc/ssh/sshd_config.d/00-galion-hardening.conf.j2",
        ports=ports,
        host_key_types=data.base_ssh_host_key_types,
        permit_root_login="no" if proven else "prohibit-password",
        max_auth_tries=data.base_ssh_max_auth_tries,
        login_grace_time=data.base_ssh_login_grace_time,
        max_startups=data.base_ssh_max_startups,
        client_alive_interval=data.base_ssh_client_alive_interval,
        client_alive_count_max=data.base_ssh_client_alive_count_max,
        max_sessions=data.base_ssh_max_sessions,
        kex=pick(data.base_ssh_kex_preference, "kex"),
        ciphers=pick(data.base_ssh_cipher_preference, "cipher"),
        macs=pick(data.base_ssh_mac_preference, "mac"),
    )
    dropin = config_file(
        name=f"SSH hardening drop-in, port {' and '.join(map(str, ports))} (validated by sshd -t)",
        dest=SSHD_DROPIN,
        content=content,
        validate=sshd_validate_command(),
    )
    # Ubuntu 24.04 starts sshd from ssh.socket; its generator reads the port at daemon-reload.
    socket_activated = host.get_fact(SystemdUnitEnabled, unit="ssh.socket") == "enabled"
    if socket_activated:
        server.shell(
            name="Re-read the SSH port for ssh.socket",
            commands=SSH_SOCKET_RELOAD,
            _if=dropin.did_change,
        )
    server.shell(
        name="Reload sshd if its config changed", commands=[SSHD_RELOAD], _if=dropin.did_change
    )


def sshd_validate_command() -> str:
    """Validate the staged drop-in together with the live main config: a temporary main
    file includes the staged drop-in first, then everything the live one includes."""
    return (
        "mkdir -p /run/sshd && t=$(mktemp) && "
        '{ echo "Include {staged}"; cat /etc/ssh/sshd_config; } > $t && '
        "sshd -t -f $t; r=$?; rm -f $t; exit $r"
    )


def _prove_login(port: int):
    """Runs on the operator's machine during the run: a new login on `port`, as this run's
    user and key, to the same sshd (same host key) as the current connection."""
    transport = host.connector.client.get_transport()
    try:
        connection.prove_login(
            host.connector.make_paramiko_kwargs(), port, transport.get_remote_server_key()
        )
    except connection.LoginNotProven as exc:
        raise OperationError(
            f"SSH stays on its old port as well: {exc}. Open port {port} wherever else a "
            "firewall sits (the provider's panel), then run again with the same --data ssh_port."
        ) from exc
