"""Alertmanager: receivers (e-mail, a webhook, a dead man's switch) and routes by
severity, checked by amtool before they go live; its secrets never shown."""

from pyinfra import host

from galion import secrets
from galion.ops import config_file

from . import daemons

ALERTMANAGER_YML = "/etc/prometheus/alertmanager.yml"
WEBHOOK_SECRET = "ALERTMANAGER_WEBHOOK_URL"
HEARTBEAT_SECRET = "ALERTMANAGER_HEARTBEAT_URL"
SEVERITIES = ("P0", "P1", "P2")
# amtool's verdict with every URL masked: its messages quote the receivers' URLs, which
# hold the webhook's secret.
AMTOOL_CHECK = (
    "out=$(amtool check-config {staged} 2>&1); rc=$?; printf '%s\\n' \"$out\" "
    "| sed -E 's#[A-Za-z][A-Za-z0-9+.-]*://[^[:space:]\"]*#<URL hidden>#g' >&2; exit $rc"
)


def alertmanager_config(
    data, webhook_url: str | None, smtp_password: str | None, heartbeat_url: str | None = None
) -> dict:
    """Routes by severity: P0 and P1 to every receiver, P2 to e-mail only (or the webhook
    when there is no mail relay); the Watchdog heartbeat to the dead man's switch only
    (nowhere without one). Inhibition: a host that is down silences its other alerts."""
    email = None
    if data.get("base_mail_relay"):
        email = {
            "to": data.monitoring_alert_email or data.operator_email,
            "from": data.operator_email,
            "smarthost": data.get("base_mail_relay"),
            "auth_username": data.base_mail_relay_user,
            "auth_password": smtp_password,
            "require_tls": True,
            "send_resolved": True,
        }
    webhook = {"url": webhook_url, "send_resolved": True} if webhook_url else None

    def receiver(name: str, with_email: bool, with_webhook: bool) -> dict:
        r: dict = {"name": name}
        if with_email and email:
            r["email_configs"] = [email]
        if with_webhook and webhook:
            r["webhook_configs"] = [webhook]
        return r

    page = receiver("page", True, True)
    ticket = receiver("ticket", True, not email)
    heartbeat: dict = {"name": "heartbeat"}
    if heartbeat_url:
        heartbeat["webhook_configs"] = [{"url": heartbeat_url, "send_resolved": False}]
    routes = [
        {
            "matchers": ['severity="heartbeat"'],
            "receiver": "heartbeat",
            "group_wait": "0s",
            "group_interval": data.monitoring_heartbeat_interval,
            "repeat_interval": data.monitoring_heartbeat_interval,
        }
    ] + [
        {
            "matchers": [f'severity="{severity}"'],
            "receiver": "ticket" if severity == "P2" else "page",
            "repeat_interval": data.monitoring_repeat_interval[severity],
        }
        for severity in SEVERITIES
    ]
    return {
        "route": {
            "receiver": "page",
            "group_by": ["alertname", "instance"],
            "group_wait": data.monitoring_group_wait,
            "group_interval": data.monitoring_group_interval,
            "repeat_interval": data.monitoring_repeat_interval["P1"],
            "routes": routes,
        },
        "inhibit_rules": [
            {
                "source_matchers": ['alertname="HostDown"'],
                "target_matchers": ['alertname!="HostDown"'],
                "equal": ["instance"],
            }
        ],
        "receivers": [page, ticket, heartbeat],
    }


def receivers_and_routes():
    """Its config (secret) reloads Alertmanager; its flags restart it."""
    data = host.data
    webhook = secrets.get(WEBHOOK_SECRET) if data.monitoring_webhook_enabled else None
    smtp = secrets.get("SMTP_RELAY_PASSWORD") if data.get("base_mail_relay") else None
    heartbeat = secrets.get(HEARTBEAT_SECRET) if data.monitoring_heartbeat_enabled else None
    conf = config_file(
        name="Alertmanager: receivers and routes by severity (secret, amtool check-config)",
        dest=ALERTMANAGER_YML,
        group="prometheus",
        mode="640",
        secret=True,
        content=daemons.yaml_file(alertmanager_config(data, webhook, smtp, heartbeat)),
        validate=AMTOOL_CHECK,
    )
    args = daemons.flags_file(
        "Alertmanager: listen address, no cluster port",
        "prometheus-alertmanager",
        ALERTMANAGER_YML,
        data.monitoring_alertmanager_port,
        "--cluster.listen-address=",
    )
    daemons.apply(
        "Alertmanager", "prometheus-alertmanager", restart=args.did_change, reload=conf.did_change
    )
