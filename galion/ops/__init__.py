"""Custom operations, one module per concern; import them from here.

- files: validated config files, secret files, role scripts, local files, nginx's logs
- templates: `render`, templates/ rendered locally
- sysctl: sysctl values applied live where the host allows it
- firewall: UFW converged to exactly the wanted rules
- postgres: SQL from a private uploaded file, never a command line
- across_hosts: a barrier every host reaches together; one host at a time
- crash_restart: a distro service back by itself after a crash
- uploads: the private-upload commands files and postgres share
"""

from ..paths import SCRIPTS_DIR
from .across_hosts import barrier, one_host_at_a_time
from .crash_restart import restarts_after_crash
from .files import NGINX_LOG_DIR, config_file, local_file, nginx_log_files, shell_script
from .firewall import ufw_rules
from .postgres import postgres_sql
from .sysctl import sysctl_values
from .templates import render

__all__ = [
    "NGINX_LOG_DIR",
    "SCRIPTS_DIR",
    "barrier",
    "config_file",
    "local_file",
    "nginx_log_files",
    "one_host_at_a_time",
    "postgres_sql",
    "render",
    "restarts_after_crash",
    "shell_script",
    "sysctl_values",
    "ufw_rules",
]
