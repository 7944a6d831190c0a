"""Paths more than one module uses, defined once: the repository's folders on the
operator's machine, and the places on a host that several roles share."""

from pathlib import Path

# On the operator's machine: found from this file, so a role module may move (become a
# package) without its paths changing.
REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates"
FILES_ROOT = REPO / "files"


def role_files(role_name: str) -> Path:
    """A role's own files (scripts, units, configs it copies as they are): files/<role>/."""
    return FILES_ROOT / role_name


# On the hosts.
# Where the roles' own programs go (root's PATH, outside any package's files).
SCRIPTS_DIR = "/usr/local/sbin"
# One file per nginx upstream with its `server` lines: the edge includes them
# (operations/nginx_tls/sites.py), app_proxy writes a missing one, and on app hosts
# galion-rollout (operations/apps/) switches them between a service's two containers.
UPSTREAM_SERVERS_DIR = "/etc/nginx/galion-upstreams"
