"""The kernel settings of a database host (memory, and binding addresses not up yet)."""

from pyinfra import host, inventory

from galion import postgresql
from galion.ops import config_file, render, sysctl_values


def os_settings(data, binds_private_address: bool) -> dict:
    """Kernel settings of a database host."""
    values = {
        "vm.swappiness": data.get("postgres_vm_swappiness"),
        "vm.overcommit_memory": data.get("postgres_vm_overcommit_memory"),
    }
    if binds_private_address:
        # After a reboot the private interface (or Docker's bridge) may come up after
        # PostgreSQL, PgBouncer and Redis: let them bind its address anyway instead of
        # failing to start.
        values["net.ipv4.ip_nonlocal_bind"] = 1
        values["net.ipv6.ip_nonlocal_bind"] = 1
    return values


def settings():
    values = os_settings(host.data, bool(postgresql.data_tier_binds(inventory, host)))
    config_file(
        name="Kernel memory settings for a database host",
        dest="/etc/sysctl.d/91-galion-database.conf",
        content=render("shared/sysctl.conf.j2", values=values),
    )
    sysctl_values(name="Database host memory settings applied where allowed", values=values)
