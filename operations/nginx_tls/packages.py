"""nginx, certbot and openssl from the distro (brotli where the distro has it), the
directories they use, the log files of fail2ban and the status listener, and no distro
default site."""

from pyinfra import host
from pyinfra.operations import apt, files

from galion.facts.apt import AptCandidate
from galion.ops import nginx_log_files

from .certificates import WEBROOT


def install() -> bool:
    """Returns whether the brotli modules are installed (the HTTP settings use them)."""
    brotli = bool(host.get_fact(AptCandidate, package="libnginx-mod-http-brotli-filter"))
    packages = ["nginx", "certbot", "openssl"]
    if brotli:
        packages += ["libnginx-mod-http-brotli-filter", "libnginx-mod-http-brotli-static"]
    apt.packages(
        name="Install nginx and certbot" + (" (+ brotli)" if brotli else ""),
        packages=packages,
        update=True,
        cache_time=3600,
        no_recommends=True,
    )
    for path in (WEBROOT, "/var/cache/nginx", "/etc/nginx/tls"):
        files.directory(name=f"Directory {path}", path=path, mode="755")
    # The 404s (fail2ban's botsearch jail), the status listener's requests.
    nginx_log_files(["not-found.log", "status.log"])
    files.link(
        name="No distro default site", path="/etc/nginx/sites-enabled/default", present=False
    )
    return brotli
