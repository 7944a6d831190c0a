"""Certificates: a self-signed placeholder nginx starts with, then one Let's Encrypt
lineage per virtual host by webroot, retried no sooner than the retry clock allows;
renewals by certbot's timer reload nginx."""

import shlex
from pathlib import Path

from pyinfra import host, logger
from pyinfra.operations import files, server, systemd

from galion import commands
from galion.facts.certbot import CertbotLineage
from galion.facts.files import PathExists, SecondsSinceFailure
from galion.ops import config_file

ACME_CA = "/etc/galion/acme-ca.pem"
WEBROOT = "/var/www/letsencrypt"
PLACEHOLDER = "/etc/nginx/tls/placeholder"


def placeholder_certificate_command() -> str:
    """A self-signed certificate nginx can start with before the first one is issued."""
    return (
        f"install -d -m 0700 {PLACEHOLDER} && openssl req -x509 -newkey rsa:2048 -nodes "
        f"-days 3650 -subj /CN=placeholder.invalid -keyout {PLACEHOLDER}/privkey.pem "
        f"-out {PLACEHOLDER}/fullchain.pem 2>/dev/null"
    )


def serve_certificate_commands(vhost: str, source_dir: str) -> list[str]:
    """Point the vhost's certificate links at a lineage (placeholder or issued)."""
    tls = f"/etc/nginx/tls/{vhost}"
    return [
        f"ln -sfn {source_dir}/fullchain.pem {tls}/fullchain.pem",
        f"ln -sfn {source_dir}/privkey.pem {tls}/privkey.pem",
    ]


def certbot_command(
    lineage: str, names: list[str], directory: str, email: str, env: str = ""
) -> str:
    """certbot by webroot; `env` sets REQUESTS_CA_BUNDLE for a private ACME CA."""
    domains = " ".join(f"-d {shlex.quote(n)}" for n in names)
    return (
        f"{env}certbot certonly --webroot -w {WEBROOT} --cert-name {lineage} {domains} "
        f"--server {shlex.quote(directory)} --email {shlex.quote(email)} "
        "--agree-tos --non-interactive --keep-until-expiring --expand --no-eff-email -q"
    )


# When issuing a certificate last failed, per lineage (epoch seconds).
ACME_FAILED_DIR = "/var/lib/galion/acme-failed"


def issue_certificate_command(lineage: str, names: list[str], data, env: str = "") -> str:
    """Issue, then serve the certificate; on failure record when, keep the placeholder and
    fail (the operation ignores the error: the run goes on and ends with a warning)."""
    live = f"/etc/letsencrypt/live/{lineage}"
    issue = certbot_command(
        lineage, names, data.get("nginx_tls_acme_directory"), data.get("operator_email"), env
    )
    serve = " && ".join([*serve_certificate_commands(lineage, live), commands.NGINX_RELOAD])
    return (
        f"if {issue}; then rm -f {ACME_FAILED_DIR}/{lineage} && {serve}; else "
        f"install -d -m 0755 {ACME_FAILED_DIR} && date +%s > {ACME_FAILED_DIR}/{lineage}.new "
        f"&& mv {ACME_FAILED_DIR}/{lineage}.new {ACME_FAILED_DIR}/{lineage}; "
        f"echo 'certificate for {lineage} not issued (does its DNS point at this host?): "
        "the placeholder stays; the next converge retries' >&2; exit 1; fi"
    )


def placeholders(vhosts):
    """nginx must start before the first certificate exists: a self-signed placeholder,
    linked where the vhost reads its certificate until certbot replaces the links."""
    if not host.get_fact(PathExists, path=f"{PLACEHOLDER}/fullchain.pem"):
        server.shell(
            name="Self-signed placeholder certificate", commands=[placeholder_certificate_command()]
        )
    for vhost in vhosts:
        tls = f"/etc/nginx/tls/{vhost['name']}"
        if host.get_fact(PathExists, path=f"{tls}/fullchain.pem"):
            continue
        server.shell(
            name=f"Placeholder certificate for {vhost['name']} until it is issued",
            commands=[
                f"install -d -m 0755 {tls}",
                *serve_certificate_commands(vhost["name"], PLACEHOLDER),
            ],
        )


def issue(vhosts):
    """certbot by webroot for each virtual host whose lineage lacks one of its names; a
    failure waits nginx_tls_acme_retry_minutes before the next attempt."""
    data = host.data
    env = ""
    if data.nginx_tls_acme_ca_bundle:
        config_file(
            name="CA bundle of the ACME server",
            dest=ACME_CA,
            content=Path(data.nginx_tls_acme_ca_bundle).expanduser().read_text(),
        )
        env = f"REQUESTS_CA_BUNDLE={ACME_CA} "
    dropin = config_file(
        name="certbot renewals use the same ACME trust",
        dest="/etc/systemd/system/certbot.service.d/galion.conf",
        content=(
            "# Managed by galion-infra (operations/nginx_tls.py).\n[Service]\n"
            + (f"Environment=REQUESTS_CA_BUNDLE={ACME_CA}\n" if env else "")
        ),
    )
    systemd.daemon_reload(name="systemd reads the certbot drop-in", _if=dropin.did_change)
    config_file(
        name="Renewed certificates reload nginx (never restart)",
        dest="/etc/letsencrypt/renewal-hooks/deploy/galion-reload-nginx",
        mode="755",
        content="#!/bin/sh\n# Managed by galion-infra (operations/nginx_tls.py).\n"
        f"{commands.NGINX_RELOAD}\n",
    )
    for vhost in vhosts:
        names = sorted([vhost["name"], *vhost.get("aliases", [])])
        if host.get_fact(CertbotLineage, lineage=vhost["name"]) == names:
            host.noop(f"certificate for {vhost['name']} is issued")
            link = f"/etc/nginx/tls/{vhost['name']}"
            files.link(
                name=f"{vhost['name']} serves its issued certificate",
                path=f"{link}/fullchain.pem",
                target=f"/etc/letsencrypt/live/{vhost['name']}/fullchain.pem",
            )
            files.link(
                name=f"{vhost['name']} serves its issued key",
                path=f"{link}/privkey.pem",
                target=f"/etc/letsencrypt/live/{vhost['name']}/privkey.pem",
            )
            continue
        since = host.get_fact(SecondsSinceFailure, path=f"{ACME_FAILED_DIR}/{vhost['name']}")
        wait = int(data.nginx_tls_acme_retry_minutes) * 60
        if since is not None and since < wait:
            host.log(
                f"certificate for {vhost['name']} not issued yet: the last attempt failed "
                f"{since // 60} min ago; the next one in {(wait - since) // 60 + 1} min "
                "(Let's Encrypt allows 5 failed validations per name and hour). The "
                "placeholder certificate is served meanwhile.",
                logger.warning,
            )
            continue
        # A failure (DNS not pointing here yet) is a warning, not a failed run: the edge
        # keeps the placeholder and every other step of the role still converges.
        server.shell(
            name=f"Certificate for {', '.join(names)} (webroot)",
            commands=[issue_certificate_command(vhost["name"], names, data, env)],
            _ignore_errors=True,
        )
    systemd.service(
        name="certbot renewal timer", service="certbot.timer", running=True, enabled=True
    )
