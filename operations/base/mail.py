"""Outgoing mail: msmtp as the system's sendmail, through the operator's SMTP relay."""

from pyinfra import host

from galion import secrets
from galion.ops import config_file, render
from galion.validators import split_host_port


def required_secrets(data) -> list[str]:
    return ["SMTP_RELAY_PASSWORD"] if data.get("base_mail_relay") else []


def relay():
    relay = host.data.base_mail_relay
    if not relay:
        return
    relay_host, relay_port = split_host_port(relay)
    config_file(
        name="SMTP relay for system mail (secret)",
        dest="/etc/msmtprc",
        mode="600",
        secret=True,
        validate="msmtp -C {staged} --pretend >/dev/null",
        content=render(
            "base/etc/msmtprc.j2",
            host=relay_host,
            port=relay_port,
            user=host.data.base_mail_relay_user,
            password=secrets.get("SMTP_RELAY_PASSWORD"),
            sender=host.data.operator_email,
        ),
    )
