"""galion.ops as the roles import it: the package's facade, and which operations pyinfra
may count as idempotent. Each concern's decisions are tested in test_ops_<module>.py."""

import pytest

from galion import ops, paths
from galion.ops import across_hosts, files, firewall, postgres, sysctl, templates


def test_the_package_exports_what_the_roles_import():
    assert ops.config_file is files.config_file
    assert ops.shell_script is files.shell_script
    assert ops.local_file is files.local_file
    assert ops.nginx_log_files is files.nginx_log_files
    assert ops.render is templates.render
    assert ops.sysctl_values is sysctl.sysctl_values
    assert ops.ufw_rules is firewall.ufw_rules
    assert ops.postgres_sql is postgres.postgres_sql
    assert ops.one_host_at_a_time is across_hosts.one_host_at_a_time
    assert ops.barrier is across_hosts.barrier
    assert ops.SCRIPTS_DIR == paths.SCRIPTS_DIR == "/usr/local/sbin"
    assert all(hasattr(ops, name) for name in ops.__all__)


@pytest.mark.parametrize("op", [ops.config_file, ops.sysctl_values, ops.ufw_rules])
def test_the_other_operations_stay_idempotent(op):
    assert op.is_idempotent is True
    assert op._inner.is_idempotent is True
