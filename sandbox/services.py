"""Services the sandbox runs on the machine itself, on the bridge address: stand-ins
for what production buys (S3-compatible storage for off-site backups)."""

import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from . import settings
from .shell import SandboxError, processes, run, say

S3_PORT = 9000
S3_BUCKET = "galion-backups"
S3_DIR = settings.STATE_DIR / "s3"
# Name the hosts reach the stand-in by (in their /etc/hosts): pgBackRest checks a
# certificate's DNS names, not IP addresses.
S3_HOSTNAME = "s3.galion.test"
CA_DIR = settings.STATE_DIR / "ca"


def _tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.prefix) / "bin" / name)
    if not Path(found).exists():
        raise SandboxError(f"{name} not found: run scripts/install.sh")
    return found


def make_ca() -> dict[str, str]:
    """A throwaway CA and a server certificate for the bridge address; hosts trust the CA."""
    CA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_key, ca_crt = CA_DIR / "ca.key", CA_DIR / "ca.crt"
    key, csr, crt, ext = (
        CA_DIR / n for n in ("server.key", "server.csr", "server.crt", "server.ext")
    )
    gateway = settings.gateway_address()
    run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=galion sandbox CA",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_crt),
    )
    run(
        "openssl",
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        f"/CN={gateway}",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    ext.write_text(f"subjectAltName=DNS:{S3_HOSTNAME},IP:{gateway}\nextendedKeyUsage=serverAuth\n")
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_crt),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        str(ext),
        "-out",
        str(crt),
    )
    return {"ca": str(ca_crt), "cert": str(crt), "key": str(key)}


def _wait_port(address: str, port: int, pid: int, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, port), 0.5).close()
            return
        except OSError:
            if subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0:
                break
            time.sleep(0.2)
    raise SandboxError(f"service on {address}:{port} did not start; see {log}")


# Every service process carries this in its environment, so `down` finds it even when
# its command line names nothing of the sandbox (pebble-challtestsrv) or the state is gone.
SERVICE_MARKER = f"GALION_SANDBOX_SERVICE={settings.PREFIX}"
# Programs the sandbox starts, for leftovers of runs from before the marker existed:
# matched together with the bridge address on their command line.
SERVICE_PROGRAMS = (b"pebble", b"pebble-challtestsrv", b"rclone")


def service_env(extra: dict | None = None) -> dict:
    key, _, value = SERVICE_MARKER.partition("=")
    return dict(os.environ, **(extra or {}), **{key: value})


def start(name: str, argv: list[str], port: int) -> int:
    log = settings.STATE_DIR / f"{name}.log"
    with open(log, "ab") as out, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            argv,
            stdin=devnull,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=service_env(),
            start_new_session=True,
        )
    _wait_port(settings.gateway_address(), port, proc.pid, log)
    return proc.pid


def start_s3(ca: dict[str, str]) -> dict:
    """`rclone serve s3` over TLS: the off-site repository's stand-in (B2 / R2)."""
    (S3_DIR / S3_BUCKET).mkdir(parents=True, exist_ok=True)
    access, secret = secrets.token_hex(10), secrets.token_urlsafe(30)
    pid = start(
        "s3",
        [
            _tool("rclone"),
            "serve",
            "s3",
            "--addr",
            f"{settings.gateway_address()}:{S3_PORT}",
            "--cert",
            ca["cert"],
            "--key",
            ca["key"],
            "--auth-key",
            f"{access},{secret}",
            "--config",
            "/dev/null",
            "--log-level",
            "INFO",
            str(S3_DIR),
        ],
        S3_PORT,
    )
    say(f"s3 stand-in on https://{settings.gateway_address()}:{S3_PORT} (bucket {S3_BUCKET})")
    return {
        "pid": pid,
        "endpoint": settings.gateway_address(),
        "hostname": S3_HOSTNAME,
        "port": S3_PORT,
        "bucket": S3_BUCKET,
        "dir": str(S3_DIR),
        "access_key": access,
        "secret_key": secret,
    }


def _is_service(pid: int, cmd: list[bytes]) -> bool:
    if pid == os.getpid() or not cmd or cmd[0].endswith(b"systemd-nspawn"):
        return False
    try:
        if SERVICE_MARKER.encode() in (Path("/proc") / str(pid) / "environ").read_bytes().split(
            b"\0"
        ):
            return True
    except OSError:
        pass
    joined = b" ".join(cmd)
    if (str(settings.STATE_DIR) + "/").encode() in joined:  # not another sandbox's dir
        return True
    program = cmd[0].rsplit(b"/", 1)[-1]
    return program in SERVICE_PROGRAMS and settings.gateway_address().encode() in joined


def service_pids() -> list[int]:
    """Processes the sandbox started on the machine (rclone, pebble, challtestsrv, ...)."""
    return [pid for pid, cmd in processes() if _is_service(pid, cmd)]


ACME_PORT = 14000
ACME_MANAGEMENT_PORT = 15000
ACME_DNS_PORT = 8053


def _save_root(url: str, ca_file: str) -> str:
    """Pebble's root CA (new at every start), saved for whatever must trust the sandbox's
    certificates from outside (the monitoring probes: monitoring_probe_ca_bundle)."""
    context = ssl.create_default_context(cafile=ca_file)
    path = settings.STATE_DIR / "acme-root.pem"
    for _ in range(50):
        try:
            with urllib.request.urlopen(url, context=context, timeout=5) as response:
                path.write_bytes(response.read())
            return str(path)
        except OSError:
            time.sleep(0.2)
    raise SandboxError(f"pebble's root CA did not come from {url}")


def start_acme(ca: dict[str, str], web_host: str) -> dict:
    """Pebble (a test ACME server) with challtestsrv as its DNS: every name resolves to
    the sandbox's edge host, so HTTP-01 validation really fetches from its nginx."""
    gateway = settings.gateway_address()
    dns = start(
        "challtestsrv",
        [
            _tool("pebble-challtestsrv"),
            "-defaultIPv4",
            web_host,
            "-defaultIPv6",
            "",
            "-dns01",
            f"{gateway}:{ACME_DNS_PORT}",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-management",
            f"{gateway}:8055",
        ],
        8055,
    )
    config = settings.STATE_DIR / "pebble-config.json"
    config.write_text(
        '{"pebble": {"listenAddress": "%s:%d", "managementListenAddress": "%s:%d", '
        '"certificate": "%s", "privateKey": "%s", "httpPort": 80, "tlsPort": 443, '
        '"ocspResponderURL": "", "externalAccountBindingRequired": false, '
        # Let's Encrypt's 90 days (Pebble's default is 5 years, which sslyze fails).
        '"certificateValidityPeriod": 7776000}}'
        % (gateway, ACME_PORT, gateway, ACME_MANAGEMENT_PORT, ca["cert"], ca["key"])
    )
    env = service_env({"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
    log = settings.STATE_DIR / "pebble.log"
    with open(log, "ab") as out, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            [_tool("pebble"), "-config", str(config), "-dnsserver", f"{gateway}:{ACME_DNS_PORT}"],
            stdin=devnull,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=settings.STATE_DIR,
        )
    _wait_port(gateway, ACME_PORT, proc.pid, log)
    say(f"ACME (pebble) on https://{gateway}:{ACME_PORT}/dir, names resolve to {web_host}")
    roots = f"https://{gateway}:{ACME_MANAGEMENT_PORT}/roots/0"
    return {
        "root_file": _save_root(roots, ca["ca"]),
        "directory": f"https://{gateway}:{ACME_PORT}/dir",
        "pid": proc.pid,
        "dns_pid": dns,
        "roots": f"https://{gateway}:{ACME_MANAGEMENT_PORT}/roots/0",
    }
