"""Facts pyinfra does not ship, one module per domain (as pyinfra's own pyinfra/facts/):
system, files, firewall, ssh, postgres, replication, pgbackrest, apt, certbot, docker.

Each fact's pyinfra name is its module and class (`galion.facts.firewall.UfwStatus`);
its command is what the hosts run and what the fact memo (galion/fact_memo.py) batches.
"""

# transitional: importers move to the domain modules
from .apt import AptCandidate
from .certbot import CertbotLineage
from .docker import AppRolloutStatus, DockerImages
from .files import ConfigSettings, FilesMarked, PathExists, SecondsSinceFailure, parse_settings
from .firewall import UfwAddedRules, UfwStatus
from .pgbackrest import PgbackrestStanza
from .postgres import PostgresClusters, PostgresDatabases, PostgresQuery, PostgresRoles
from .replication import PostgresPromotionState, PostgresReplicaState, PostgresSystemIdentifier
from .ssh import ImageUserAccess, OpensshAlgorithms
from .system import (
    ContainerVirtualization,
    MemoryTotalMb,
    SysctlState,
    SystemdUnitEnabled,
    ToolModes,
    in_container,
    parse_tool_modes,
)

__all__ = [
    "AppRolloutStatus",
    "AptCandidate",
    "CertbotLineage",
    "ConfigSettings",
    "ContainerVirtualization",
    "DockerImages",
    "FilesMarked",
    "ImageUserAccess",
    "MemoryTotalMb",
    "OpensshAlgorithms",
    "PathExists",
    "PgbackrestStanza",
    "PostgresClusters",
    "PostgresDatabases",
    "PostgresPromotionState",
    "PostgresQuery",
    "PostgresReplicaState",
    "PostgresRoles",
    "PostgresSystemIdentifier",
    "SecondsSinceFailure",
    "SysctlState",
    "SystemdUnitEnabled",
    "ToolModes",
    "UfwAddedRules",
    "UfwStatus",
    "in_container",
    "parse_settings",
    "parse_tool_modes",
]
