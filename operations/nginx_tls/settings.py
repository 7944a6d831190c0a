"""nginx's own files and those every virtual host shares: nginx.conf, the security
headers, the HTTP settings (logs, compression, rate limits, caches, TLS), the status
listener on loopback and port 443's sockets."""

from pyinfra import host

from galion.ops import config_file, render

from .reload import nginx_file


def http(brotli: bool) -> list:
    """nginx.conf, the headers snippet, the HTTP settings: the operations, in order."""
    data = host.data
    changed = [
        nginx_file(
            "nginx.conf (workers, modules)",
            "/etc/nginx/nginx.conf",
            render("nginx_tls/etc/nginx/nginx.conf.j2"),
        )
    ]
    changed.append(
        config_file(
            name="Security headers snippet",
            dest="/etc/nginx/snippets/galion-headers.conf",
            content=render("nginx_tls/etc/nginx/snippets/galion-headers.conf.j2"),
        )
    )
    changed.append(
        nginx_file(
            "HTTP settings: logs, compression, rate limits, caches, TLS",
            "/etc/nginx/conf.d/00-galion-http.conf",
            render(
                "nginx_tls/etc/nginx/conf.d/00-galion-http.conf.j2",
                client_max_body_size=data.nginx_tls_client_max_body_size,
                access_log_flush=data.nginx_tls_access_log_flush_seconds,
                brotli=brotli,
                cloudflare=data.nginx_tls_behind_cloudflare,
                cloudflare_ranges=data.nginx_tls_cloudflare_ranges,
                rate_api=data.nginx_tls_rate_api_per_minute,
                rate_general=data.nginx_tls_rate_general_per_minute,
                rate_limit_exempt=data.nginx_tls_rate_limit_exempt_cidrs,
                cache_api_size=data.nginx_tls_cache_api_size,
                cache_static_size=data.nginx_tls_cache_static_size,
            ),
        )
    )
    return changed


def status_listener():
    """On loopback, after the upstreams: stub_status and the apps' metrics."""
    data = host.data
    return nginx_file(
        "Status listener on loopback: stub_status, the apps' metrics",
        "/etc/nginx/conf.d/30-galion-status.conf",
        render(
            "nginx_tls/etc/nginx/conf.d/30-galion-status.conf.j2",
            status_port=data.nginx_tls_status_port,
            metrics_path=data.nginx_tls_app_metrics_path,
            metrics_upstreams=data.nginx_tls_metrics_upstreams,
        ),
    )


def https_sockets():
    return nginx_file(
        "Port 443's sockets: one per worker (reuseport)",
        "/etc/nginx/conf.d/90-galion-https-sockets.conf",
        render("nginx_tls/etc/nginx/conf.d/90-galion-https-sockets.conf.j2"),
    )
