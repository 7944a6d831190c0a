"""Preflight's checks of the alert receivers: someone is reached, the webhook's URL is
one Alertmanager can post to."""

import urllib.parse

from galion import secrets
from galion.validators import Problem

from .alertmanager import HEARTBEAT_SECRET, WEBHOOK_SECRET


def required_secrets(data) -> list[str]:
    return [
        *([WEBHOOK_SECRET] if data.get("monitoring_webhook_enabled") else []),
        *([HEARTBEAT_SECRET] if data.get("monitoring_heartbeat_enabled") else []),
    ]


def _port_ok(url: urllib.parse.SplitResult) -> bool:
    """A typo in the port ("8o80") is refused here: amtool would refuse it on the host,
    and its message (which holds the secret URL) is not shown."""
    try:
        url.port
    except ValueError:
        return False
    return True


def check_host(name: str, data, groups) -> list[Problem]:
    if "monitoring" not in groups:
        return []
    if not data.get("monitoring_webhook_enabled") and not data.get("base_mail_relay"):
        return [
            Problem(
                name,
                "monitoring_webhook_enabled",
                "is off and base_mail_relay is empty: alerts would reach nobody",
                "set ALERTMANAGER_WEBHOOK_URL and leave the webhook on, or set base_mail_relay",
            )
        ]
    if data.get("monitoring_webhook_enabled") and secrets.problem(WEBHOOK_SECRET) is None:
        url = urllib.parse.urlsplit(secrets.get(WEBHOOK_SECRET))
        if url.scheme not in ("http", "https") or not url.hostname or not _port_ok(url):
            return [
                Problem(
                    name,
                    f"secret {WEBHOOK_SECRET}",
                    "is not an http(s) URL",
                    "paste the URL of a receiver of Alertmanager's webhook JSON",
                )
            ]
        if url.hostname.endswith("hooks.slack.com"):
            # Slack answers Alertmanager's JSON with 400: every alert would be dropped.
            return [
                Problem(
                    name,
                    f"secret {WEBHOOK_SECRET}",
                    "is a Slack incoming webhook, which rejects Alertmanager's JSON",
                    "point it at a bridge that reads Alertmanager's webhook JSON",
                )
            ]
    return []
