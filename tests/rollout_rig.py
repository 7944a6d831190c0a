"""A host for galion-rollout without a host: stand-ins for docker, curl, nginx, systemctl,
logger and sleep (small shell scripts first on PATH, each logging its calls) around one
service's settings, nginx servers file, access log and marker in a scratch directory.

The stand-ins keep the state a real host would: containers (name, state, config hash,
published address, image), what nginx sends traffic to (the servers file of its last
reload that passed `nginx -t`), and the requests it logs while the script sleeps. Each
image behaves as the test says: healthy or not, exiting at once, failing its health
check once nginx sends it traffic, answering that traffic 200 or 5xx.
"""

import os
import shutil
from pathlib import Path

from tests import stand_ins

REPO = Path(__file__).resolve().parent.parent
ROLLOUT = REPO / "files" / "apps" / "galion-rollout"

# The real programs the script may run besides the stand-ins: only these are on PATH, so
# neither a real docker nor the test machine's nginx is ever reached.
TOOLS = (
    "bash sh awk sed head tail stat cut mkdir mv cp rm tr timeout cat grep flock basename "
    "dirname ls env"
).split()

# Sourced by every stand-in: an image's behaviour, a container's fields, nginx's check.
LIB = r"""
behaviour() {  # IMAGE -> "HEALTH TRAFFIC" (default: healthy, answers 200)
    local line
    line=$(grep -F -- "$1 " "$STUB/images" 2>/dev/null | head -n 1)
    if [ -n "$line" ]; then echo "${line#* }"; else echo "200 200"; fi
}
read_container() { IFS='|' read -r state hash ports image <"$STUB/containers/$1"; }
# The running container publishing ADDRESS:PORT, or nothing.
container_at() {
    local f
    for f in "$STUB"/containers/*; do
        [ -e "$f" ] || continue
        read_container "${f##*/}"
        if [ "$state" = running ] && [ "${ports%%->*}" = "$1" ]; then echo "${f##*/}"; return; fi
    done
}
# nginx -t: refuses a servers file naming the address in $STUB/nginx-refuses.
nginx_accepts() {
    [ ! -e "$STUB/nginx-refuses" ] ||
        ! grep -qF "$(cat "$STUB/nginx-refuses")" "$SERVERS" 2>/dev/null
}
"""

STUBS = {
    "docker": r"""
if [ -e "$STUB/docker-down" ]; then echo "Cannot connect to the Docker daemon" >&2; exit 1; fi
dir=$STUB/containers
case $1 in
ps)
    shift
    all=false filter="" format=""
    while [ $# -gt 0 ]; do
        case $1 in
            -a) all=true; shift ;;
            --filter) filter=$2; shift 2 ;;
            --format) format=$2; shift 2 ;;
            *) shift ;;
        esac
    done
    for f in "$dir"/*; do
        [ -e "$f" ] || continue
        name=${f##*/}
        read_container "$name"
        case $filter in
            label=galion.service=*) [ "${name%-*}" = "${filter#*=*=}" ] || continue ;;
            name=*) n=${filter#name=^}; [ "$name" = "${n%\$}" ] || continue ;;
        esac
        if [ "$state" != running ]; then
            [ "$all" = true ] || continue
            ports=""  # a stopped container publishes nothing
        fi
        if [ "$format" = '{{.Ports}}' ]; then
            echo "$ports"
        else
            echo "$name|$state|$hash|$ports"
        fi
    done
    ;;
inspect)  # inspect -f FORMAT NAME
    [ -e "$dir/$4" ] || { echo "Error: No such object: $4" >&2; exit 1; }
    read_container "$4"
    case $3 in
        *Running*) if [ "$state" = running ]; then echo true; else echo false; fi ;;
        *) echo "$image" ;;
    esac
    ;;
image) grep -qF -- "$3 " "$STUB/images" 2>/dev/null ;;  # image inspect IMAGE
pull) echo "Error response from daemon: pull access denied for $3" >&2; exit 1 ;;
run)
    shift
    name="" hash="" publish="" detach=false
    while [ $# -gt 0 ]; do
        case $1 in
            -d) detach=true; shift ;;
            --rm) shift ;;
            --name) name=$2; shift 2 ;;
            --label) case $2 in galion.config-hash=*) hash=${2#*=} ;; esac; shift 2 ;;
            --publish) publish=$2; shift 2 ;;
            -*) shift 2 ;;
            *) break ;;
        esac
    done
    image=$1
    if [ -e "$dir/$name" ]; then
        echo "docker: Error response from daemon: Conflict. The name \"/$name\" is in use" >&2
        exit 125
    fi
    [ "$detach" = true ] || exit 0  # a migration: done
    read -r health _ < <(behaviour "$image")
    state=running
    if [ "$health" = exits ]; then state=exited; fi
    echo "$state|$hash|${publish%:*}->${publish##*:}/tcp|$image" >"$dir/$name"
    echo "c0ffee$name"
    ;;
rm) rm -f "$dir/$3" ;;  # rm -f NAME
stop) if [ -e "$dir/$4" ]; then sed -i 's/^running|/exited|/' "$dir/$4"; fi ;;  # stop -t 10 NAME
logs) echo "Traceback: the app gave up" ;;
*) echo "stand-in docker: unexpected $*" >&2; exit 99 ;;
esac
""",
    "curl": r"""
url=${*: -1}
address=${url#http://}
address=${address%%/*}
name=$(container_at "$address")
if [ -z "$name" ]; then
    printf 000
    echo "curl: (7) Failed to connect to $address" >&2
    exit 7
fi
read_container "$name"
read -r health _ < <(behaviour "$image")
if [ "$health" = fades ]; then  # healthy until nginx sends it traffic
    health=200
    if [ "$(cat "$STUB/nginx-serves" 2>/dev/null)" = "$address" ]; then health=503; fi
fi
printf '%s' "$health"
if [ "$health" != 200 ]; then
    echo "curl: (22) The requested URL returned error: $health" >&2
    exit 22
fi
""",
    "nginx": r"""
if ! nginx_accepts; then echo "nginx: [emerg] host not found in upstream" >&2; exit 1; fi
echo "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok" >&2
""",
    "systemctl": r"""
# As nginx does: a reload with a config that fails its check keeps the old one.
if [ "$*" = "reload nginx" ] && nginx_accepts; then
    sed -n 's/^server \([^ ;]*\).*/\1/p' "$SERVERS" 2>/dev/null | head -n 1 >"$STUB/nginx-serves"
    cat "$STUB/nginx-serves" >>"$STUB/nginx-history"
fi
""",
    "logger": "",
    # A twentieth of the time; meanwhile nginx sends ten requests where it points, each
    # answered as that container's image answers (502: nothing listens there).
    "sleep": r"""
"$REAL_SLEEP" 0.05
address=$(cat "$STUB/nginx-serves" 2>/dev/null || true)
[ -n "$address" ] || exit 0
code=502
name=$(container_at "$address")
if [ -n "$name" ]; then
    read_container "$name"
    read -r _ code < <(behaviour "$image")
fi
for _ in 1 2 3 4 5 6 7 8 9 10; do
    echo "198.51.100.7 \"GET /version HTTP/1.1\" ua=$address st=$code rt=0.004" >>"$ACCESS_LOG"
done
""",
}

SERVICE = "galion-api"


def settings(rig: "Rig", **changes) -> str:
    """A settings file as the converge writes it (operations/apps/settings.py), with
    short waits."""
    values = {
        "IMAGE": "app:v2",
        "UPSTREAM": "galion_api",
        "BIND": "127.0.0.1",
        "PORT_A": 8001,
        "PORT_B": 18001,
        "CONTAINER_PORT": 8000,
        "MEMORY_MB": 256,
        "CPUS": 0.5,
        "ENV_FILE": rig.env_file,
        "HEALTH_PATH": "/health",
        "HEALTH_INTERVAL": 10,
        "HEALTH_TIMEOUT": 1,
        "WATCH_SECONDS": 1,
        "DRAIN_SECONDS": 30,
        "ERROR_PERCENT": 5,
        "MIN_REQUESTS": 5,
        "SERVERS_FILE": rig.servers_file,
        "ACCESS_LOG": rig.access_log,
        "LOG_FLUSH": 0,
        "LOG_MAX_SIZE": "10m",
        "LOG_MAX_FILES": 3,
        "MIGRATE": "",
        "MIGRATE_TIMEOUT": 600,
        "BACKUP_BEFORE_MIGRATE": "false",
        "CONFIG_HASH": "newhash",
    }
    values.update(changes)
    return "".join(f"{k}='{v}'\n" for k, v in values.items())


class Rig:
    def __init__(self, tmp_path: Path, script: str | None = None):
        self.root = tmp_path
        self.stub = tmp_path / "stub"
        stand_ins.install(tmp_path, STUBS, TOOLS, LIB)
        (self.stub / "containers").mkdir()
        for name in ("conf", "state", "lock", "upstreams"):
            (tmp_path / name).mkdir()
        self.script = tmp_path / "galion-rollout"
        self.script.write_text(script if script is not None else ROLLOUT.read_text())
        self.servers_file = tmp_path / "upstreams" / "galion_api.servers"
        self.access_log = tmp_path / "access.log"
        self.access_log.write_text("")
        self.env_file = tmp_path / "app.env"
        self.env_file.write_text("DATABASE_URL=postgresql://galion:s3cret-pw@db:6432/galion\n")
        self.marker = tmp_path / "state" / f"{SERVICE}.live"
        self.write_settings()

    def write_settings(self, **changes) -> None:
        (self.root / "conf" / f"{SERVICE}.conf").write_text(settings(self, **changes))

    # The host's state before a run.
    def image(self, name: str, health="200", traffic="200") -> None:
        with open(self.stub / "images", "a") as f:
            f.write(f"{name} {health} {traffic}\n")

    def container(
        self, slot: str, state: str, hash: str, port: int, image: str, service: str = SERVICE
    ) -> None:
        line = f"{state}|{hash}|127.0.0.1:{port}->8000/tcp|{image}\n"
        (self.stub / "containers" / f"{service}-{slot}").write_text(line)

    def nginx_points_at(self, port: int, reloaded: bool = True) -> None:
        self.servers_file.write_text(f"server 127.0.0.1:{port} max_fails=0;\n")
        if reloaded:
            (self.stub / "nginx-serves").write_text(f"127.0.0.1:{port}\n")

    def finished(self, hash: str, slot: str) -> None:
        self.marker.write_text(f"{hash} {SERVICE}-{slot}\n")

    # Runs.
    def run(self, *args: str, docker: bool = True, timeout: int = 60):
        """Source the script in bash and call its main, as the command line would."""
        if not docker:
            (self.root / "bin" / "docker").unlink()
        return stand_ins.run(self.script, args, self.env(), timeout=timeout)

    def env(self) -> dict[str, str]:
        """The stand-ins and TOOLS only on PATH; where the stand-ins keep their state."""
        return {
            "PATH": stand_ins.path(self.root),
            "STUB": str(self.stub),
            "SERVERS": str(self.servers_file),
            "ACCESS_LOG": str(self.access_log),
            "REAL_SLEEP": shutil.which("sleep"),
            "GALION_APPS_CONF_DIR": str(self.root / "conf"),
            "GALION_APPS_STATE_DIR": str(self.root / "state"),
            "GALION_ROLLOUT_LOCK_DIR": str(self.root / "lock"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }

    # The host's state after a run.
    def containers(self) -> dict[str, tuple[str, str, str, str]]:
        """{name: (state, config hash, published address, image)}"""
        found = {}
        for f in sorted((self.stub / "containers").iterdir()):
            state, hash, ports, image = f.read_text().strip().split("|")
            found[f.name] = (state, hash, ports.split("->")[0], image)
        return found

    def nginx_serves(self) -> str:
        path = self.stub / "nginx-serves"
        return path.read_text().strip() if path.exists() else ""

    def nginx_history(self) -> list[str]:
        path = self.stub / "nginx-history"
        return path.read_text().split() if path.exists() else []

    def calls(self) -> list[str]:
        return stand_ins.calls(self.root)

    def finished_rollout(self) -> str:
        """The marker's line, "" without one."""
        return self.marker.read_text() if self.marker.exists() else ""

    def servers_target(self) -> str:
        for line in self.servers_file.read_text().splitlines():
            if line.startswith("server "):
                return line.split()[1]
        return ""
