"""Facts of SSH access: what the installed OpenSSH supports, how an image's user gets in."""

from typing import ClassVar

from ._base import _Fact, _first_line


class OpensshAlgorithms(_Fact):
    """What the installed OpenSSH supports, per `ssh -Q` query.

    `{"kex": [...], "cipher": [...], "mac": [...], "key": [...]}`.
    """

    required_command = "ssh"
    default_value: ClassVar[dict] = {}

    def command(self):
        return 'for q in kex cipher mac key; do echo "== $q"; ssh -Q $q; done'

    def process(self, output):
        found, current = {}, None
        for line in output:
            if line.startswith("== "):
                current = line[3:].strip()
                found[current] = []
            elif current and line.strip():
                found[current].append(line.strip())
        return found


class ImageUserAccess(_Fact):
    """How a (cloud image's) user can get in: `{"keys": bool, "sudo_files": [...],
    "expired": bool}`, or None if there is no such user."""

    def command(self, user):
        return (
            f"getent passwd {user} >/dev/null || exit 0; "
            f"h=$(getent passwd {user} | cut -d: -f6); k=0; "
            f'[ -s "$h/.ssh/authorized_keys" ] && k=1; '
            f"e=$(chage -l {user} | awk -F': ' '/^Account expires/ {{print $2}}'); "
            f"echo \"$k|$e|$(grep -lsE '^[[:space:]]*{user}[[:space:]]' /etc/sudoers.d/* "
            "| tr '\\n' ' ')\""
        )

    def process(self, output):
        line = _first_line(output)
        if not line:
            return None
        keys, expires, files = (line.split("|") + ["", ""])[:3]
        return {
            "keys": keys == "1",
            "sudo_files": files.split(),
            "expired": expires.strip() not in ("", "never"),
        }
