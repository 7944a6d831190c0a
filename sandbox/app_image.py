"""The sandbox's app image, built on this machine without Docker or a registry: this
machine's Python interpreter (with the libraries and modules the app imports) and
tests/files/testapp.py in one layer, packed as a `docker save` archive the apps role
uploads and loads (`image_archive`). One archive holds every test tag:

    galion-test-app:v1, :v2      healthy, answer with their version
    galion-test-app:broken       never turns healthy
    galion-test-app:fades        healthy, then answers 500 to everything after FAIL_AFTER s
"""

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "tests" / "files" / "testapp.py"
REPOSITORY = "galion-test-app"
# Seconds after start when :fades begins to fail: past the health gate and the cutover.
FADES_AFTER = 8
TAGS = {
    "v1": {"APP_VERSION": "v1"},
    "v2": {"APP_VERSION": "v2"},
    "broken": {"APP_VERSION": "broken", "FAIL_HEALTH": "1"},
    "fades": {"APP_VERSION": "fades", "FAIL_AFTER": str(FADES_AFTER)},
}

_FILES = """
import sys, base64, hashlib, os, shlex, signal, socket, socketserver, threading, time
import encodings.idna
print("\\n".join(sorted({m.__file__ for m in list(sys.modules.values())
                         if getattr(m, "__file__", None)})))
"""


def _runtime_files() -> list[str]:
    """The interpreter, its shared libraries and the modules the app imports."""
    python = str(Path(sys.executable).resolve()) if "venv" not in sys.executable else None
    python = python or "/usr/bin/python3"
    python = str(Path(python).resolve())
    modules = subprocess.run(
        [python, "-S", "-c", _FILES], check=True, capture_output=True, text=True
    ).stdout.split()
    objects = [python] + [m for m in modules if m.endswith(".so")]
    libs = subprocess.run(["ldd", *objects], check=True, capture_output=True, text=True).stdout
    shared = [
        part
        for line in libs.splitlines()
        for part in line.split()
        if part.startswith("/") and not part.endswith(":")
    ]
    encodings = [str(p) for p in Path(modules[0]).parent.glob("encodings/*.py")]
    stdlib = next(str(Path(m).parent) for m in modules if m.endswith("/os.py"))
    return [python, *shared, *modules, *encodings, f"{stdlib}/os.py"]


def _usr_merged(path: str) -> str:
    """Where a file lives in a merged-/usr tree (Debian's layout): /lib/x -> /usr/lib/x."""
    for top in ("/lib64/", "/lib/", "/bin/", "/sbin/"):
        if path.startswith(top):
            return "/usr" + path
    return path


def _layer() -> bytes:
    """Everything under /usr (/lib, /lib64, /bin are links into it, as on Debian): a
    container can run the host's own binaries with the host's /usr mounted over it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        seen: set[str] = set()
        files = _runtime_files()
        python = files[0]

        def directories(name: str):
            parts = Path(name).parts[1:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in seen:
                    seen.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)

        def add(data: bytes, name: str):
            name = _usr_merged(name)
            if name in seen:
                return
            directories(name)
            seen.add(name)
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))

        for f in sorted(set(files)):
            add(Path(f).resolve().read_bytes(), f)
        add(Path(python).read_bytes(), "/usr/bin/python3")
        add(APP.read_bytes(), "/app/app.py")
        # Just enough of a shell for `sh -c "<one command>"` (the rollout's migrations).
        shim = (
            "#!/usr/bin/python3 -S\nimport os, shlex, sys\n"
            "args = shlex.split(sys.argv[2]) if sys.argv[1:2] == ['-c'] else sys.argv[1:]\n"
            "os.execv(args[0], args)\n"
        ).encode()
        add(shim, "/usr/bin/sh")
        for link in ("lib", "lib64", "bin", "sbin"):
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, f"usr/{link}"
            tar.addfile(info)
        info = tarfile.TarInfo("tmp")
        info.type, info.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(info)
    return buf.getvalue()


def build(dest: Path) -> Path:
    """Write the archive (gzip) to `dest`; skip if it exists for this app source."""
    stamp = hashlib.sha256(
        APP.read_bytes() + Path(__file__).read_bytes() + json.dumps(TAGS).encode()
    ).hexdigest()[:12]
    path = dest / f"galion-test-app-{stamp}.tar.gz"
    if path.exists():
        return path
    dest.mkdir(parents=True, exist_ok=True)
    layer = _layer()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    layer_dir = hashlib.sha256(layer).hexdigest()
    out = io.BytesIO()
    manifest = []
    with tarfile.open(fileobj=out, mode="w") as tar:

        def put(name: str, data: bytes):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))

        put(f"{layer_dir}/layer.tar", layer)
        for tag, env in TAGS.items():
            config = {
                "architecture": "amd64",
                "os": "linux",
                "config": {
                    "Env": [f"{k}={v}" for k, v in env.items()] + ["PYTHONDONTWRITEBYTECODE=1"],
                    "Cmd": ["/usr/bin/python3", "-S", "/app/app.py"],
                    # 30 s, as real images set it: the role's knob overrides it
                    # (apps_health_check_interval_seconds), and the tests check it does.
                    # A check is a `docker exec` of Python in a container of 0.5 CPU: on
                    # the test command's loaded 2 cores some took over 3 s, and two such
                    # in a row read a serving container "unhealthy". 10 s and 3 tries,
                    # as real images give a check (Docker's own default: 30 s, 3).
                    "Healthcheck": {
                        "Test": ["CMD", "/usr/bin/python3", "-S", "/app/app.py", "--health"],
                        "Interval": 30_000_000_000,
                        "Timeout": 10_000_000_000,
                        "Retries": 3,
                    },
                },
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{"created_by": "sandbox/app_image.py"}],
            }
            raw = json.dumps(config, sort_keys=True).encode()
            name = hashlib.sha256(raw).hexdigest() + ".json"
            put(name, raw)
            manifest.append(
                {
                    "Config": name,
                    "RepoTags": [f"{REPOSITORY}:{tag}"],
                    "Layers": [f"{layer_dir}/layer.tar"],
                }
            )
        put("manifest.json", json.dumps(manifest).encode())
    path.write_bytes(gzip.compress(out.getvalue(), compresslevel=6))
    for old in dest.glob("galion-test-app-*.tar.gz"):
        if old != path:
            old.unlink()
    return path


if __name__ == "__main__":
    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/galion-app-image")))
