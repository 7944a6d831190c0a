"""Facts pyinfra does not ship, one module per domain (as pyinfra's own pyinfra/facts/):
system, files, firewall, ssh, postgres, replication, pgbackrest, apt, certbot, docker.

Each fact's pyinfra name is its module and class (`galion.facts.firewall.UfwStatus`);
its command is what the hosts run and what the fact memo (galion/fact_memo.py) batches.
"""

# Still imported from here by operations/apps.py only (edited elsewhere in step 10):
# everything else imports a fact from its domain module. Drop these with that import.
from .docker import AppContainers, DockerImages
from .system import MemoryTotalMb

__all__ = ["AppContainers", "DockerImages", "MemoryTotalMb"]
