"""How pyinfra reaches a host over SSH, and the proof that a login works on a new port.

pyinfra's own `ssh_port` follows the `base_ssh_port` knob unless the run sets it (the run
that moves SSH sets it to the port sshd listens on today; see README "Moving SSH").
"""

DEFAULT_SSH_PORT = 22


def login_port(data) -> int:
    """The port this run connects on: `ssh_port` when set, else the `base_ssh_port` knob."""
    return int(data.get("ssh_port") or data.get("base_ssh_port") or DEFAULT_SSH_PORT)


def follow_ssh_port(inventory) -> None:
    """Give every host without an explicit `ssh_port` the one sshd is configured for."""
    for host in inventory:
        if host.data.get("ssh_port") is None and host.data.get("base_ssh_port"):
            host.data.ssh_port = int(host.data.get("base_ssh_port"))
            # The SSH connector copied its data when the state was set up: update that too.
            connector_data = getattr(getattr(host, "connector", None), "data", None)
            if isinstance(connector_data, dict):
                connector_data["ssh_port"] = host.data.ssh_port


def moving_from(data) -> int | None:
    """The port SSH is being moved away from in this run, or None when it stays."""
    current, wanted = login_port(data), int(data.get("base_ssh_port") or DEFAULT_SSH_PORT)
    return current if current != wanted else None


class LoginNotProven(Exception):
    """A login on the new port failed; the message says why."""


def prove_login(connect_kwargs: dict, port: int, host_key, attempts: int = 10) -> None:
    """Log in on `port` exactly as pyinfra did (its paramiko arguments: user, key or
    password, agent) and run `true`; sshd may need a moment after its reload, so a refused
    connection is retried (`attempts`, 1 s apart).

    The host must present `host_key`, the key of the connection this run already has:
    the same sshd, so the new port needs no known_hosts entry of its own.
    Raises LoginNotProven with the reason."""
    import time

    import paramiko

    kwargs = {k: v for k, v in connect_kwargs.items() if not k.startswith("_pyinfra")}
    hostname = kwargs.pop("hostname")
    kwargs["port"] = port
    kwargs.setdefault("timeout", 15)

    class _SameHostKey(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client, name, key):
            if host_key is None or key != host_key:
                raise LoginNotProven(
                    f"port {port} presents another host key than the current connection"
                )

    for attempt in range(attempts):
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(_SameHostKey())
        try:
            client.connect(hostname, **kwargs)
            _, stdout, _ = client.exec_command("true", timeout=15)
            status = stdout.channel.recv_exit_status()
            if status != 0:
                raise LoginNotProven(f"a login on port {port} worked but `true` exited {status}")
            return
        except LoginNotProven:
            raise
        except (ConnectionRefusedError, paramiko.ssh_exception.NoValidConnectionsError):
            if attempt == attempts - 1:
                raise LoginNotProven(f"nothing answers on {hostname}:{port}") from None
            time.sleep(1)
        except Exception as exc:  # paramiko, socket and timeout errors alike
            user = kwargs.get("username", "?")
            raise LoginNotProven(f"no login as {user} on {hostname}:{port}: {exc}") from exc
        finally:
            client.close()
