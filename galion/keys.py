"""SSH public keys as the inventory gives them: a key line, or a path to a .pub file."""

import base64
import binascii
import subprocess
from pathlib import Path

KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
KEY_PREFIXES = ("ssh-", "ecdsa-", "sk-")


def is_inline(entry: str) -> bool:
    return entry.strip().startswith(KEY_PREFIXES)


def key_lines(entry: str) -> list[str]:
    """The key lines an entry stands for: itself, or the lines of the .pub file it names
    (comments and blank lines dropped). Raises OSError if the file cannot be read."""
    entry = entry.strip()
    if is_inline(entry):
        return [entry]
    text = Path(entry).expanduser().read_text()
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def line_problem(line: str) -> str | None:
    """Why one key line is not an SSH public key, or None."""
    parts = line.split()
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        return f"{line[:30]!r}... is not an SSH public key"
    if "PRIVATE KEY" in line:
        return "that is a private key"
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return f"{parts[0]} key with invalid base64"
    if parts[0].encode() not in blob[:64]:
        return f"{parts[0]} key whose body is of another type"
    return None


def entry_problem(entry) -> str | None:
    """Why an authorized-keys entry is unusable, or None."""
    if not isinstance(entry, str) or not entry.strip():
        return "an empty entry"
    try:
        lines = key_lines(entry)
    except OSError:
        return f"{entry} is neither a public key nor a readable .pub file"
    if not lines:
        return f"{entry} holds no key"
    for line in lines:
        reason = line_problem(line)
        if reason:
            return reason
    return None


def blob(line: str) -> str:
    """The base64 body of a key line: what identifies the key (type and comment aside)."""
    return line.split()[1]


def login_key_blob(private_key: str) -> str | None:
    """The public half of the private key pyinfra logs in with, if it can be read here:
    derived from the key itself (`ssh-keygen -y`, which also proves the .pub file is not
    stale), else from its .pub file; None when neither works (a passphrase, no file)."""
    path = Path(private_key).expanduser()
    if not path.is_file():
        return None
    try:
        proc = subprocess.run(
            ["ssh-keygen", "-y", "-P", "", "-f", str(path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if proc.returncode == 0 and not line_problem(proc.stdout.strip()):
            return blob(proc.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    pub = path.with_name(path.name + ".pub")
    try:
        lines = key_lines(str(pub))
    except OSError:
        return None
    return blob(lines[0]) if lines and not line_problem(lines[0]) else None
