"""The memory plan: what may be resident at once on an app host must fit its RAM."""

from pyinfra.api.exceptions import DeployError


def memory_plan(data, groups) -> dict[str, int]:
    """What may be resident at once on this host, in MB: the apps' limits, and the data
    tier's budgets when it runs here too."""
    plan = {s["name"]: s["memory_mb"] for s in data.apps_services}
    if "db" in groups:
        plan["PostgreSQL (postgres_memory_budget_mb)"] = data.postgres_memory_budget_mb
        plan["Redis (redis_maxmemory_mb)"] = data.redis_maxmemory_mb
    plan["OS reserve (apps_os_reserve_mb)"] = data.apps_os_reserve_mb
    extra = sorted((s["memory_mb"] for s in data.apps_services), reverse=True)
    headroom = sum(extra[: max(0, data.apps_parallel_rollouts - 1)])
    if headroom:
        plan["second containers of parallel updates (apps_parallel_rollouts)"] = headroom
    return plan


def check_memory_plan(plan: dict[str, int], total_mb: int, host_name: str) -> None:
    if sum(plan.values()) > total_mb:
        parts = " + ".join(f"{k} {v}" for k, v in plan.items())
        raise DeployError(
            f"{host_name}: the memory plan needs {sum(plan.values())} MB ({parts}) but the "
            f"host has {total_mb} MB: lower the apps' memory_mb, the data tier's budgets or "
            "apps_os_reserve_mb"
        )
