"""The retire of names removed from the data: their upstream and virtual host files
leave conf.d (after nginx -t), the reload drops them, then they are deleted."""

import re
import shlex
from pathlib import Path

from pyinfra import host
from pyinfra.operations import server

from galion.facts.files import FilesMarked

CONF_D = "/etc/nginx/conf.d"
# This role's files of conf.d named after an upstream or a virtual host; a `.galion-retired`
# one was taken out of the include glob (*.conf) by a run that stopped before its reload.
PER_NAME_FILE = re.compile(r"^(10-upstream|20-vhost)-(.+)\.conf(\.galion-retired)?$")
RETIRED = ".galion-retired"
# The first line of every file this role writes: only such files are ever retired.
MANAGED = "# Managed by galion-infra (operations/nginx_tls.py)"


def retire_command(stale: list[str], already_out: list[str]) -> str:
    """Take files no longer in the data out of nginx's include glob (`stale`: live files;
    `already_out`: live paths whose file a stopped run had renamed already), then nginx -t;
    if nginx refuses the config without them, every one is put back and the run fails."""
    q = shlex.quote
    out = [f"mv -f {q(p)} {q(p + RETIRED)}" for p in stale]
    back = "; ".join(f"mv -f {q(p + RETIRED)} {q(p)}" for p in [*stale, *already_out])
    refused = "nginx -t refused the config without them: put back, nothing reloaded"
    return " && ".join(
        [*out, f"{{ nginx -t -q || {{ {back}; echo {q(refused)} >&2; exit 1; }}; }}"]
    )


def take_out(wanted: set[str]):
    """A virtual host or upstream removed from the data stops being served: its file
    leaves conf.d (after nginx -t) and the reload drops it. Only files this role wrote
    (its header); an operator's own file is never touched, whatever its name. Certificates
    are kept (a name added back serves its lineage again; `certbot delete --cert-name NAME`
    frees it)."""
    found = host.get_fact(FilesMarked, path=CONF_D, names="*.conf*", marker=MANAGED)
    stale, already_out = [], []
    for path in sorted(found):
        match = PER_NAME_FILE.match(Path(path).name)
        if not match:
            continue
        live = path.removesuffix(RETIRED)
        if Path(live).name in wanted:
            continue
        if not match.group(3):
            stale.append(live)
        elif live not in stale:  # a stopped run renamed it; not a second copy of a live one
            already_out.append(live)
    if not stale and not already_out:
        return None
    names = ", ".join(Path(p).name for p in [*stale, *already_out])
    return server.shell(
        name=f"Retire nginx files no longer in the data: {names}",
        commands=[retire_command(stale, already_out)],
    )


def delete(retire):
    """After the reload (reload.nginx): the files the retire took out, if it ran."""
    if retire:
        server.shell(
            name="Delete the retired nginx files (reloaded without them)",
            commands=[f"rm -f {shlex.quote(CONF_D)}/*{RETIRED}"],
            _if=retire.did_change,
        )
