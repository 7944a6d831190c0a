"""What one module tells another during a run: pyinfra plans every host's deploy in one
process, so a failover (actions/failover_steps.py) leaves here what the roles it converges
afterwards must know. Empty in a plain converge."""

# Hosts failover.py promotes in this run: still standbys when the run is planned, which
# the postgres role would otherwise refuse to converge as the primary.
PROMOTING: set[str] = set()
# Replicas failover.py fences or cannot reach in this run (it fills this): down until a
# converge rejoins them, so the apps read from the primary meanwhile.
FENCED_OR_UNREACHED: set[str] = set()
