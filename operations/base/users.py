"""Users: the deploy user (keys, sudo, the record that it logs in) and the cloud image's
first-login users, closed once the deploy user is proven."""

from pathlib import Path

from pyinfra import host
from pyinfra.operations import files, server

from galion import keys
from galion.facts.ssh import ImageUserAccess
from galion.ops import config_file, render

# Written once the deploy user has logged in and used sudo (the current run connected
# as it): from then on root may not log in over SSH at all.
DEPLOY_PROVEN_MARKER = "/var/lib/galion/deploy-user-proven"


def authorized_keys(data) -> list[str]:
    """The deploy user's keys: entries are public keys or paths to .pub files (read here)."""
    return [
        line
        for entry in data.get("base_deploy_authorized_keys") or []
        for line in keys.key_lines(entry)
    ]


def deploy_user():
    user = host.data.base_deploy_user
    server.user(
        name=f"Deploy user {user} with the operator's keys",
        user=user,
        shell="/bin/bash",
        create_home=True,
        public_keys=authorized_keys(host.data),
        delete_keys=True,
    )
    config_file(
        name=f"Passwordless sudo for {user}",
        dest="/etc/sudoers.d/90-galion-deploy",
        content=render("base/etc/sudoers.d/90-galion-deploy.j2", user=user),
        mode="440",
        validate="visudo -cqf {staged}",
    )
    # Connected as the deploy user with sudo working: it is proven, root can go.
    if host.data.get("ssh_user") == user:
        files.directory(
            name="State directory of galion-infra",
            path=str(Path(DEPLOY_PROVEN_MARKER).parent),
            mode="755",
        )
        files.file(
            name="Record that the deploy user logs in and sudoes",
            path=DEPLOY_PROVEN_MARKER,
            mode="644",
        )


def lock_image_user_command(user: str) -> str:
    """Close a cloud image's first-login user: no keys, no sudo rule, account expired
    (sshd's PAM account check then refuses it, keys or not)."""
    return (
        f'h=$(getent passwd {user} | cut -d: -f6) && {{ [ ! -f "$h/.ssh/authorized_keys" ] || '
        f': > "$h/.ssh/authorized_keys"; }} && '
        f"for f in $(grep -lsE '^[[:space:]]*{user}[[:space:]]' /etc/sudoers.d/*); do "
        # Only a file about this user alone goes (cloud-init's); one that also holds other
        # rules stays as it is: editing sudoers line by line risks a broken sudo.
        f"if grep -vE '^[[:space:]]*(#|$)' \"$f\" | grep -qvE '^[[:space:]]*{user}[[:space:]]'; "
        f'then echo "galion: $f also holds other rules: left in place" >&2; '
        f'else rm -f "$f"; fi; done && visudo -cq && usermod -L --expiredate 1 {user}'
    )


def image_users():
    data = host.data
    if data.get("ssh_user") != data.base_deploy_user:
        host.noop("the deploy user is not proven by this run: image users stay as they are")
        return
    for user in data.base_image_users_to_lock:
        if user in ("root", data.base_deploy_user):
            continue
        access = host.get_fact(ImageUserAccess, user=user)
        if access is None:
            continue  # no such user
        # An expired account cannot log in to use a sudo rule that was left in place.
        if not access["keys"] and access["expired"]:
            host.noop(f"image user {user} is closed")
            continue
        server.shell(
            name=f"Close the image user {user} (the deploy user is proven)",
            commands=[lock_image_user_command(user)],
        )
