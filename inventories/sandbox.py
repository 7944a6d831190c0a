# The local sandbox hosts booted by `python -m sandbox up`, read from its state file.
#
#     python -m sandbox up                                        # boot
#     pyinfra -y inventories/sandbox.py deploy.py --data ssh_user=root   # first converge
#     pyinfra -y inventories/sandbox.py deploy.py                 # every later converge
#
# Secrets come from the sandbox's throwaway file, never from a real .env.

import os

from operations import knobs as _role_knobs
from sandbox import state as _sandbox_state

_state = _sandbox_state.load()
os.environ.setdefault("GALION_ENV_FILE", _state["secrets_env"])

# The apps run the sandbox's test image (sandbox/app_image.py), loaded from its archive
# (no registry here), with the plan's limits and ports; short drains and watch windows
# keep the update tests quick (the tests read the knobs, never the numbers).
_services = []
for _s in _role_knobs()["apps_services"]:
    _websocket = _s["drain_seconds"] > 60
    _services.append(
        {
            **_s,
            "image": "galion-test-app:v1",
            "image_archive": _state.get("app_image_archive"),
            "container_port": 8000,
            "drain_seconds": 5 if _websocket else 2,
            "migrate": "/usr/bin/python3 -S /app/app.py --migrate" if _s["migrate"] else None,
        }
    )

_groups: dict[str, list] = {}
for _h in _state["hosts"]:
    _data = {
        "ssh_hostname": _h["address"],
        # The sandbox's hosts share one bridge: it is their private network too.
        **({"private_address": _h["address"]} if len(_state["hosts"]) > 1 else {}),
        "ssh_user": "deploy",
        "ssh_key": _state["operator_key"],
        "ssh_known_hosts_file": _state["known_hosts"],
        "ssh_strict_host_key_checking": "accept-new",
        "_sudo": True,
        "base_deploy_authorized_keys": [_state["operator_key"] + ".pub"],
        # The machine running the tests is the operator's workstation: not rate-limited.
        "base_ssh_trusted_cidrs": [_state["gateway"] + "/32"],
        # A relay that exists only on paper: exercises the secret file, sends nothing.
        "base_mail_relay": _state["gateway"] + ":587",
        "base_mail_relay_user": "galion-sandbox",
        # The sandbox host sees the whole machine's RAM; plan PostgreSQL for a small box.
        "postgres_memory_budget_mb": 1024,
        # Throwaway hosts may restart PostgreSQL whenever a setting needs it (the tests of
        # the restart rule pass --data postgres_restart_allowed=false).
        "postgres_restart_allowed": True,
        "redis_maxmemory_mb": 256,
        # Off-site backups go to the sandbox's S3 stand-in (rclone serve s3, TLS).
        "backups_s3_endpoint": _state["s3"]["hostname"],
        "backups_s3_port": _state["s3"]["port"],
        "backups_s3_region": "us-east-1",
        "backups_s3_bucket": _state["s3"]["bucket"],
        "backups_s3_path": "/sandbox",
        "backups_s3_ca_file": _state["ca_file"],
        # The stand-in's name resolves only on the hosts; this machine reaches it here.
        "backups_s3_check_address": _state["s3"]["endpoint"],
        # Shorter than production's 60 s so the disaster drills wait less; the tests
        # check the bound relative to this knob.
        "backups_archive_timeout": 10,
        # Certificates from the sandbox's Pebble, trusted through the sandbox CA.
        "nginx_tls_acme_directory": _state.get("acme", {}).get("directory", ""),
        "nginx_tls_acme_ca_bundle": _state["ca_file"],
        # The test machine is the operator's: its load tests are not rate-limited.
        "nginx_tls_rate_limit_exempt_cidrs": [_state["gateway"] + "/32"],
        "apps_services": _services,
        # Short, so that an image that never turns healthy fails its test soon; not 10 s:
        # when a changed secret rolls all six services out at once beside the fleet's
        # converge (a load of 14 on the 2 cores) some new containers were not listening
        # yet after 10 s.
        "apps_health_timeout_seconds": 30,
        # Docker's health checks every 5 s (production: 10), so that the tests see a
        # container's health soon. Not 2 s: each check is a `docker exec` of Python
        # (0.6 s, about 0.1 core-second here): at 2 s the 18 containers of the test
        # command's two sandboxes took about 0.9 of the 2 cores. bench/edge measures at
        # the production default.
        "apps_health_check_interval_seconds": 5,
        # Short: every secret or port change rolls the services out (the update tests
        # pass a longer window); the sandbox has the RAM for updating all at once.
        "apps_watch_seconds": 2,
        "apps_parallel_rollouts": 6,
        "apps_backup_before_migrate": False,
        # The probes trust Pebble's root (new at every `up`), as clients trust Let's Encrypt.
        "monitoring_probe_ca_bundle": _state.get("acme", {}).get("root_file", ""),
        # Quick to notice and to tell: the alert tests wait for the rule's `for`, one
        # scrape and the group wait; the tests read these knobs, never the numbers.
        "monitoring_scrape_interval": "5s",
        "monitoring_group_wait": "5s",
        "monitoring_group_interval": "15s",
    }
    for _group in _h["groups"]:
        _groups.setdefault(_group, []).append((_h["name"], _data))

globals().update(_groups)
