"""Steps that order the hosts among themselves: a barrier every host reaches together,
and a command run on one host at a time that stops at the first failure."""

from pyinfra import host
from pyinfra.api import OperationError, operation
from pyinfra.api.command import FunctionCommand
from pyinfra.operations import files


def barrier(name: str) -> None:
    """A step that every host calling it from the same line reaches together.

    pyinfra orders each host's operations after its own earlier ones and joins the
    hosts' orders at an operation they share (the same stack of line numbers): every
    operation a host called before this line runs, on every host, before any host
    runs what it calls after it. Changes nothing."""
    files.directory(name=name, path="/", present=True)


@operation(is_idempotent=False)
def one_host_at_a_time(command: str, key: str):
    """
    Run `command` on each host in turn (call with _serial=True), and on no further host
    once it failed on one: a rollout that fails on the first app host is not tried on the
    next (pyinfra alone goes on with the other hosts).

    + command: the shell command
    + key: names this step across the hosts (the same on each)
    """
    yield FunctionCommand(_start, (key, host.name), {})
    yield command
    yield FunctionCommand(_done, (key, host.name), {})


# Hosts whose `one_host_at_a_time` command started in this run and has not finished (it
# failed, or is running), by the `key` the callers give.
_STARTED_NOT_DONE: dict[str, set[str]] = {}


def _start(name: str, host_name: str) -> None:
    failed = sorted(_STARTED_NOT_DONE.setdefault(name, set()))
    if failed:
        raise OperationError(
            f"not started here: it failed on {', '.join(failed)} first; this host keeps "
            "what it runs. Fix that host's failure, then converge again."
        )
    _STARTED_NOT_DONE[name].add(host_name)


def _done(name: str, host_name: str) -> None:
    _STARTED_NOT_DONE[name].discard(host_name)
