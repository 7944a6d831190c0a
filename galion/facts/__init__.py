"""Facts pyinfra does not ship, one module per domain (as pyinfra's own pyinfra/facts/):
system, files, firewall, ssh, postgres, replication, pgbackrest, apt, certbot, docker.

Each fact's pyinfra name is its module and class (`galion.facts.firewall.UfwStatus`);
its command is what the hosts run and what the fact memo (galion/fact_memo.py) batches.
"""

# Nothing is re-exported: every importer names the domain module
# (tests/unit/test_layout.py checks it).
__all__: list[str] = []
